#!/usr/bin/env bash
# Generates the media validator's test corpus into DIR with ffmpeg (Debian's `ffmpeg` package: libx264, libx265,
# libvpx, libsvtav1, aac, libopus, libmp3lame). No media binaries live in the repository; this script is the corpus.
#
#   infra/scripts/media-corpus.sh DIR
#
# Every file is written under a temporary name and renamed when complete, and an existing file is kept, so an
# interrupted run resumes. A stamp with the corpus version forces a full rebuild when this script changes the set.
# functions/media-validator/tests/corpus.rs holds the expected verdict for every file named here.
set -euo pipefail

CORPUS_VERSION=5

if [[ $# -ne 1 || "$1" == -* ]]; then
    echo "usage: $0 DIR   (generates the media corpus into DIR; needs ffmpeg on PATH)" >&2
    exit 2
fi
command -v ffmpeg >/dev/null || { echo "ffmpeg not found: apt-get install -y ffmpeg" >&2; exit 1; }

dir=$1
mkdir -p "$dir"
cd "$dir"
if [[ "$(cat .corpus-version 2>/dev/null || true)" != "$CORPUS_VERSION" ]]; then
    find . -maxdepth 1 -type f ! -name '.corpus-version' -delete
fi

ff() { ffmpeg -nostdin -hide_banner -loglevel error -y "$@"; }

# produce NAME COMMAND...: runs COMMAND with every argument `OUT` (and the variable $out, for functions) replaced by a
# temporary path, then renames the result to NAME.
produce() {
    local name=$1
    shift
    [[ -e "$name" ]] && return 0
    out=".tmp.$name"
    local args=()
    for arg in "$@"; do
        if [[ "$arg" == OUT ]]; then args+=("$out"); else args+=("$arg"); fi
    done
    "${args[@]}"
    mv -f "$out" "$name"
    echo "  $name"
}

# Synthetic sources: a moving test pattern (so encoders produce real P/B frames) and a sine tone.
video() { echo -f lavfi -i "testsrc2=size=$1:rate=$2"; }
tone() { echo -f lavfi -i "sine=frequency=440:sample_rate=${1:-48000}"; }
H264=(-pix_fmt yuv420p -c:v libx264 -preset ultrafast -g 30)
AAC=(-c:a aac -b:a 96k)

echo "media corpus -> $dir"

# H.264/AAC in the accepted containers and layouts.
# veryfast (not ultrafast) so that this one is High profile with B-frames, as phone and editor exports are.
produce mp4-faststart-1080x1920.mp4 ff $(video 1080x1920 30) $(tone) -t 2 -pix_fmt yuv420p -c:v libx264 -preset veryfast "${AAC[@]}" \
    -movflags +faststart -f mp4 OUT
produce mp4-moov-at-end.mp4 ff $(video 720x1280 30) $(tone) -t 2 "${H264[@]}" "${AAC[@]}" -f mp4 OUT
produce mov-h264-aac.mov ff -i mp4-moov-at-end.mp4 -c copy -f mov OUT
produce mp4-fragmented.mp4 ff -i mp4-moov-at-end.mp4 -c copy -movflags frag_keyframe+empty_moov+default_base_moof \
    -f mp4 OUT
# Fragmented without the trailing mfra index: the duration must come from the last moof in the tail.
produce mp4-fragmented-no-mfra.mp4 ff -i mp4-moov-at-end.mp4 -c copy \
    -movflags frag_keyframe+empty_moov+default_base_moof+skip_trailer -f mp4 OUT
produce mpegts-h264-aac.ts ff -i mp4-moov-at-end.mp4 -c copy -f mpegts OUT
produce m2ts-h264-aac.m2ts ff -i mp4-moov-at-end.mp4 -c copy -f mpegts -mpegts_m2ts_mode 1 OUT
# What real .mpg uploads are: MPEG-2 video with MPEG audio in a program stream (ffmpeg refuses AAC in PS).
produce mpegps-mpeg2-mp2.mpg ff $(video 720x1280 25) $(tone) -t 2 -pix_fmt yuv420p -c:v mpeg2video -b:v 2M \
    -c:a mp2 -f vob OUT

# Rotation, remuxed (ffmpeg 5.1 ignores `rotate` while encoding). ffmpeg 5.1 writes the tag `rotate=270` as the
# matrix of a phone held upright (display = stored turned 90° clockwise), and `rotate=90` as its opposite.
produce landscape-1280x720.mp4 ff $(video 1280x720 30) $(tone) -t 2 "${H264[@]}" "${AAC[@]}" -f mp4 OUT
produce rotated-90.mp4 ff -i landscape-1280x720.mp4 -c copy -metadata:s:v:0 rotate=270 -f mp4 OUT
produce rotated-270.mp4 ff -i landscape-1280x720.mp4 -c copy -metadata:s:v:0 rotate=90 -f mp4 OUT

# Frame rates: the 23–60 rule with its rounding tolerance.
produce fps-23.976.mp4 ff $(video 720x1280 24000/1001) $(tone) -t 2 "${H264[@]}" "${AAC[@]}" -f mp4 OUT
produce fps-24.mp4 ff $(video 720x1280 24) $(tone) -t 2 "${H264[@]}" "${AAC[@]}" -f mp4 OUT
produce fps-60.mp4 ff $(video 720x1280 60) $(tone) -t 2 "${H264[@]}" "${AAC[@]}" -f mp4 OUT
produce fps-20.mp4 ff $(video 720x1280 20) $(tone) -t 2 "${H264[@]}" "${AAC[@]}" -f mp4 OUT
produce fps-120.mp4 ff $(video 720x1280 120) $(tone) -t 1 "${H264[@]}" "${AAC[@]}" -f mp4 OUT

# Resolution and aspect ratio.
produce res-360x640.mp4 ff $(video 360x640 30) $(tone) -t 2 "${H264[@]}" "${AAC[@]}" -f mp4 OUT
produce aspect-1x1.mp4 ff $(video 1080x1080 30) $(tone) -t 1 "${H264[@]}" "${AAC[@]}" -f mp4 OUT
produce aspect-16x9.mp4 ff $(video 1920x1080 30) $(tone) -t 1 "${H264[@]}" "${AAC[@]}" -f mp4 OUT
produce aspect-4x3.mp4 ff $(video 960x720 30) $(tone) -t 1 "${H264[@]}" "${AAC[@]}" -f mp4 OUT

# Codecs the guide does not allow, in MP4.
produce hevc-aac.mp4 ff $(video 720x1280 30) $(tone) -t 1 -pix_fmt yuv420p -c:v libx265 -preset ultrafast \
    -x265-params log-level=error -tag:v hvc1 "${AAC[@]}" -f mp4 OUT
produce vp9-aac.mp4 ff $(video 720x1280 30) $(tone) -t 1 -pix_fmt yuv420p -c:v libvpx-vp9 -deadline realtime \
    -cpu-used 8 -b:v 1M "${AAC[@]}" -f mp4 OUT
produce av1-aac.mp4 env SVT_LOG=1 ffmpeg -nostdin -hide_banner -loglevel error -y $(video 720x1280 30) $(tone) -t 1 -pix_fmt yuv420p -c:v libsvtav1 -preset 12 "${AAC[@]}" \
    -f mp4 OUT
produce h264-mp3.mp4 ff $(video 720x1280 30) $(tone 44100) -t 2 "${H264[@]}" -c:a libmp3lame -b:a 128k -f mp4 OUT
produce h264-opus.mp4 ff $(video 720x1280 30) $(tone) -t 2 "${H264[@]}" -c:a libopus -b:a 64k -f mp4 OUT
produce h264-no-audio.mp4 ff $(video 720x1280 30) -t 2 "${H264[@]}" -f mp4 OUT

# Containers the guide does not allow.
produce webm-vp9-opus.webm ff $(video 720x1280 30) $(tone) -t 1 -pix_fmt yuv420p -c:v libvpx-vp9 -deadline realtime \
    -cpu-used 8 -b:v 1M -c:a libopus -f webm OUT
produce mkv-h264-aac.mkv ff -i mp4-moov-at-end.mp4 -c copy -f matroska OUT
produce avi-h264-mp3.avi ff $(video 720x1280 30) $(tone 44100) -t 1 "${H264[@]}" -c:a libmp3lame -f avi OUT

# Over ten minutes. The 60 fps one has a 96 kHz audio track so that its moov (about 1.2 MB) exceeds the 1 MiB
# windows, in both layouts: the third read.
produce long-11min.mp4 ff -f lavfi -i color=c=blue:size=128x72:rate=10 -f lavfi -i anullsrc=r=8000:cl=mono -t 660 \
    -c:v libx264 -preset ultrafast -c:a aac -b:a 8k -movflags +faststart -f mp4 OUT
produce long-11min-60fps-moov-at-end.mp4 ff $(video 128x72 60) $(tone 96000) -t 660 -pix_fmt yuv420p -c:v libx264 \
    -preset ultrafast -x264-params bframes=2:b-adapt=0 -crf 40 -c:a aac -b:a 16k -f mp4 OUT
produce long-11min-60fps-faststart.mp4 ff -i long-11min-60fps-moov-at-end.mp4 -c copy -movflags +faststart -f mp4 OUT
# The same, fragmented (about 165 fragments): head and tail windows each see a few; the rest of the timeline is
# reached through the mfra index, or without one by scanning the tail for the last moofs.
produce long-11min-60fps-fragmented.mp4 ff -i long-11min-60fps-moov-at-end.mp4 -c copy \
    -movflags frag_keyframe+empty_moov+default_base_moof -f mp4 OUT
produce long-11min-60fps-fragmented-no-mfra.mp4 ff -i long-11min-60fps-moov-at-end.mp4 -c copy \
    -movflags frag_keyframe+empty_moov+default_base_moof+skip_trailer -f mp4 OUT

# Over 4 GB without using the disk: a valid faststart MP4 followed by a `free` box with a 64-bit size, made sparse.
sparse() {
    local base=mp4-faststart-1080x1920.mp4
    local base_size total free_size
    base_size=$(stat -c %s "$base")
    total=4300000000
    free_size=$((total - base_size))
    cp "$base" "$out"
    # size = 1 (a 64-bit largesize follows), type `free`, largesize: 16 bytes of header, then zeros to the end.
    printf '\x00\x00\x00\x01free' >>"$out"
    printf "$(printf '%016x' "$free_size" | sed 's/../\\x&/g')" >>"$out"
    truncate -s "$total" "$out"
}
produce sparse-over-4gb.mp4 sparse

# Broken files.
prefix_of() { head -c "$2" "$1" >"$out"; }
produce truncated-faststart.mp4 prefix_of mp4-faststart-1080x1920.mp4 600000
produce truncated-moov-at-end.mp4 prefix_of mp4-moov-at-end.mp4 600000
produce garbage.bin ff -f lavfi -i anoisesrc=seed=42:sample_rate=8000 -t 4 -f s16le OUT
produce empty.mp4 prefix_of /dev/null 0

# Images.
produce image-9x16.jpg ff $(video 1080x1920 1) -frames:v 1 -q:v 3 -f image2 -c:v mjpeg OUT
produce image-16x9.png ff $(video 1920x1080 1) -frames:v 1 -f image2 -c:v png OUT
produce image-9x16.webp ff $(video 1080x1920 1) -frames:v 1 -c:v libwebp -quality 80 -f webp OUT
produce image-4x3.jpg ff $(video 1440x1080 1) -frames:v 1 -q:v 3 -f image2 -c:v mjpeg OUT
produce image.gif ff $(video 480x854 1) -frames:v 1 -f gif OUT
# A landscape JPEG whose EXIF orientation 6 turns it upright: an APP1 segment spliced in after SOI.
exif_jpeg() {
    local base=.tmp.exif-base.jpg
    ff $(video 1920x1080 1) -frames:v 1 -q:v 3 -f image2 -c:v mjpeg "$base"
    {
        printf '\xff\xd8'
        # APP1, length 34: "Exif\0\0", big-endian TIFF header, IFD0 with one entry: Orientation (0x0112) SHORT = 6.
        printf '\xff\xe1\x00\x22Exif\x00\x00MM\x00\x2a\x00\x00\x00\x08\x00\x01'
        printf '\x01\x12\x00\x03\x00\x00\x00\x01\x00\x06\x00\x00\x00\x00\x00\x00'
        tail -c +3 "$base"
    } >"$out"
    rm -f "$base"
}
produce image-exif-orientation-6.jpg exif_jpeg
# Stored without compression, a 2700×2700 RGB PNG is about 21.9 MB: over the 20 MB image limit, made in a blink.
produce image-over-20mb.png ff $(video 2700x2700 1) -frames:v 1 -pix_fmt rgb24 -compression_level 0 -f image2 -c:v png OUT

echo "$CORPUS_VERSION" >.corpus-version
echo "media corpus ready: $(find . -maxdepth 1 -type f ! -name '.*' | wc -l) files"
