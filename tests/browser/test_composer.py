"""The composer page in a real browser (Debian's Chromium driven by Playwright) against the local runner and its TikTok
sandbox: every TikTok UX rule of the "Post to TikTok" page, the upload with its verdict, and posts followed to their
end. Started by infra/scripts/browser-tests.sh, which passes the runner's addresses in the environment. Each test
keeps a screenshot under target/browser-screenshots/.
"""

import json
import re
import os
import subprocess
import time
import unittest
import urllib.request
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from playwright.sync_api import expect, sync_playwright


SHOTS = Path(os.environ["POSTATO_SCREENSHOTS"])
MEDIA = Path(os.environ["POSTATO_MEDIA_DIR"])
DEV_CREATOR = "sandbox-dev-creator"
# A time zone away from UTC, so that the schedule's offset is visibly the user's own.
ZONE = "Europe/Paris"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
DISCLOSURE_TEXT = "You need to indicate if your content promotes yourself, a third party, or both."
BRANDED_PRIVATE_TEXT = "Branded content visibility cannot be set to private."


def call(base, method, path, body=None, key=None):
    headers = {"content-type": "application/json"}
    if key:
        headers["authorization"] = f"Bearer {key}"
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method, headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        text = response.read()
    return json.loads(text) if text else None


def ffmpeg(name, *args):
    """A media file made by ffmpeg once per run (the repository holds no media)."""
    path = MEDIA / name
    if not path.exists():
        subprocess.run(["ffmpeg", "-v", "error", "-y", *args, str(path)], check=True)
    return path


def video(name, source, seconds, size, codec="libx264"):
    encoder = ["-c:v", codec, "-preset", "ultrafast"] if codec == "libx264" else ["-c:v", codec]
    return ffmpeg(
        name, "-f", "lavfi", "-i", f"{source}=size={size}:rate=30", "-f", "lavfi", "-i", "sine=frequency=440",
        "-t", str(seconds), *encoder, "-pix_fmt", "yuv420p", "-c:a", "aac", "-movflags", "+faststart",
    )


def contains(text):
    """Playwright matches attribute values against a string (exactly) or a pattern."""
    return re.compile(re.escape(text))


class BrowserCase(unittest.TestCase):
    """The browser and helpers; a subclass names the runner (its env prefix) and holds the tests."""

    runner = None

    @classmethod
    def setUpClass(cls):
        prefix = f"POSTATO_{cls.runner}_"
        cls.base = os.environ[prefix + "BASE_URL"]
        cls.sandbox = os.environ[prefix + "SANDBOX_URL"]
        cls.key = os.environ[prefix + "API_KEY"]
        cls.account = os.environ[prefix + "DEV_ACCOUNT"]
        # A test run opens the composer (a fresh creator_info each time, as TikTok asks) more often in a minute than
        # a person does; TikTok's 20 a minute per creator would answer 429 part-way through.
        call(cls.sandbox, "PUT", "/_sandbox/settings", {"rate_limits": {
            "init_per_minute": 100, "creator_info_per_minute": 1000, "status_per_minute": 1000,
            "user_info_per_minute": 1000}})
        cls.dev_creator = next(a for a in call(cls.sandbox, "GET", "/_sandbox/accounts") if a["open_id"] == DEV_CREATOR)
        cls.playwright = sync_playwright().start()
        cls.browser = cls.playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)

    @classmethod
    def tearDownClass(cls):
        cls.browser.close()
        cls.playwright.stop()

    def setUp(self):
        call(self.sandbox, "PUT", f"/_sandbox/accounts/{DEV_CREATOR}", self.dev_creator)
        self.open_browser(1280, 1000)

    def open_browser(self, width, height):
        self.context = self.browser.new_context(viewport={"width": width, "height": height}, timezone_id=ZONE)
        self.context.set_default_timeout(20_000)
        self.page = self.context.new_page()
        self.page_errors = []
        self.page.on("pageerror", lambda error: self.page_errors.append(str(error)))
        self.sent = []
        self.page.on("request", lambda r: self.sent.append((r.method, r.url, r.post_data)))
        self.shot_taken = False

    def tearDown(self):
        if not self.shot_taken:
            self.shot()
        self.context.close()
        self.assertEqual(self.page_errors, [], "the page threw")

    def shot(self, name=None):
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SHOTS / f"{name or self._testMethodName}.png"), full_page=True)
        self.shot_taken = True

    def creator(self, **changes):
        call(self.sandbox, "PUT", f"/_sandbox/accounts/{DEV_CREATOR}", {**self.dev_creator, **changes})

    def open_composer(self):
        page = self.page
        page.goto(self.base + "/")
        expect(page.locator("#app")).to_be_visible()
        page.locator(f"input[name=account][value={self.account}]").check()
        expect(page.locator("#creator")).to_contain_text("Sandbox Creator")
        return page

    def upload(self, path, expect_accepted=True):
        page = self.page
        page.set_input_files("#file", str(path))
        verdict = page.locator("#media .verdict")
        expect(verdict).to_be_visible(timeout=30_000)
        if expect_accepted:
            expect(verdict.locator(".ok")).to_contain_text("Meets TikTok's specs")
        return verdict

    def posts_created(self):
        return [s for s in self.sent if s[0] == "POST" and s[1].endswith("/v1/posts")]



class ComposerTest(BrowserCase):
    """The runner as it starts by default: an unaudited TikTok app, so the dev creator is private."""

    runner = "UNAUDITED"

    # ------------------------------------------------------------------ accounts

    def test_connect_another_account_through_tiktok_oauth_and_reconnect_it(self):
        call(self.sandbox, "POST", "/_sandbox/accounts", {
            "open_id": "second-creator", "display_name": "Second Creator", "username": "second", "private": True})
        call(self.sandbox, "PUT", "/_sandbox/authorizer", {"open_id": "second-creator"})
        try:
            page = self.open_composer()
            with page.expect_popup():
                page.click("#connect")
            row = page.locator(".account", has_text="Second Creator")
            expect(row.locator(".badge")).to_have_text("connected")
            expect(page.locator("#connect-status")).to_contain_text("Connected Second Creator")
            expect(page.locator("#creator")).to_contain_text("Second Creator")

            # The user removes the app in TikTok: the signed webhook marks the account, the page offers Reconnect.
            call(self.sandbox, "POST", "/_sandbox/accounts/second-creator/remove-authorization", {})
            account_id = row.get_attribute("data-account")
            for _ in range(100):
                if call(self.base, "GET", f"/v1/accounts/{account_id}", key=self.key)["status"] != "connected":
                    break
                time.sleep(0.1)
            page.reload()
            row = page.locator(f".account[data-account={account_id}]")
            expect(row.locator(".badge")).to_have_text("disconnected")
            self.shot("accounts_reconnect_offered")
            with page.expect_popup():
                row.get_by_role("button", name="Reconnect").click()
            expect(row.locator(".badge")).to_have_text("connected")
            self.shot()
        finally:
            call(self.sandbox, "PUT", "/_sandbox/authorizer", {"open_id": DEV_CREATOR})

    # ------------------------------------------------------------------ upload

    def test_upload_shows_progress_then_the_verdict_facts(self):
        page = self.open_composer()
        clip = video("clip.mp4", "testsrc2", 3, "1080x1920")
        # Slow the upload so that the bar is seen moving (about 1 MB/s).
        cdp = self.context.new_cdp_session(page)
        cdp.send("Network.enable")
        cdp.send("Network.emulateNetworkConditions", {
            "offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": 1_000_000})
        page.set_input_files("#file", str(clip))
        bar = page.locator("#media progress")
        expect(bar).to_be_visible()
        page.wait_for_function("() => { const p = document.querySelector('#media progress'); return p && p.value > 0 }")
        self.shot("upload_in_progress")
        cdp.send("Network.emulateNetworkConditions", {
            "offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})
        verdict = page.locator("#media .verdict")
        expect(verdict.locator(".ok")).to_contain_text("Meets TikTok's specs", timeout=30_000)
        facts = verdict.locator(".facts")
        expect(facts).to_contain_text("3 s")
        expect(facts).to_contain_text("1080 × 1920")
        expect(facts).to_contain_text("30 fps")
        expect(facts).to_contain_text("h264")
        expect(facts).to_contain_text("aac")
        expect(page.locator("#cover-picker")).to_be_visible()
        page.locator("#cover-at").fill("1500")
        expect(page.locator("#cover-at-out")).to_have_text("1.5 s")
        self.shot()

    def test_verdict_shows_warnings_and_violations_with_their_fixes(self):
        page = self.open_composer()
        verdict = self.upload(video("landscape.mp4", "testsrc2", 2, "1280x720"))
        expect(verdict.locator(".warnings li[data-code=will_be_cropped]")).to_contain_text("crop")
        self.shot("verdict_warning")
        verdict = self.upload(video("mpeg4.mp4", "testsrc", 2, "720x1280", codec="mpeg4"), expect_accepted=False)
        expect(verdict.locator(".bad")).to_contain_text("Does not meet")
        expect(verdict.locator(".violations li[data-code=video_codec_unsupported]")).to_contain_text("libx264")
        expect(page.locator("#publish")).to_be_disabled()
        self.shot()

    # ------------------------------------------------------------------ TikTok's UX rules

    def test_privacy_has_no_default_and_lists_only_the_creators_options(self):
        page = self.open_composer()
        privacy = page.locator("#privacy")
        self.assertEqual(privacy.input_value(), "")
        labels = privacy.locator("option:not([value=''])").all_inner_texts()
        # The dev creator is private (the app is unaudited): TikTok offers followers, friends and only me.
        self.assertEqual(labels, ["Followers", "Friends", "Only me"])
        expect(page.locator("#privacy-note")).to_contain_text("has not passed TikTok's audit")
        expect(privacy.locator("option[value=followersOnly]")).to_be_disabled()
        for box in ("#allow-comment", "#allow-duet", "#allow-stitch", "#disclose", "#ai-generated"):
            expect(page.locator(box)).not_to_be_checked()
        expect(page.locator("#publish")).to_be_disabled()
        expect(page.locator("#blockers")).to_contain_text("Choose who can view this post.")
        expect(page.locator("#declaration")).to_have_text("By posting, you agree to TikTok's Music Usage Confirmation.")
        expect(page.locator("#declaration a")).to_have_attribute("href", contains("music-usage-confirmation"))
        self.shot()

    def test_interactions_are_unchecked_and_greyed_for_a_creator_who_disabled_duets(self):
        self.creator(private=False, duet_disabled=True, stitch_disabled=False, comment_disabled=False)
        page = self.open_composer()
        expect(page.locator("#allow-duet")).to_be_disabled()
        expect(page.locator("#duet-row")).to_have_class(contains("off"))
        expect(page.locator("#allow-comment")).to_be_enabled()
        expect(page.locator("#allow-stitch")).to_be_enabled()
        for box in ("#allow-comment", "#allow-duet", "#allow-stitch"):
            expect(page.locator(box)).not_to_be_checked()
        expect(page.locator("#interactions-note")).to_contain_text("turned off duets")
        self.shot()
        # Photos show only "Allow Comment".
        page.check("input[name=postType][value=photo]")
        expect(page.locator("#comment-row")).to_be_visible()
        expect(page.locator("#duet-row")).to_be_hidden()
        expect(page.locator("#stitch-row")).to_be_hidden()
        self.shot("interactions_photo_comment_only")

    def test_disclosure_on_with_nothing_checked_disables_publish_with_tiktoks_hover_text(self):
        page = self.open_composer()
        self.upload(video("clip.mp4", "testsrc2", 3, "1080x1920"))
        page.select_option("#privacy", "private")
        expect(page.locator("#publish")).to_be_enabled()
        page.check("#disclose")
        expect(page.locator("#publish")).to_be_disabled()
        expect(page.locator("#publish")).to_have_attribute("title", DISCLOSURE_TEXT)
        expect(page.locator("#publish-wrap")).to_have_attribute("title", DISCLOSURE_TEXT)
        self.shot()
        page.check("#brand-organic")
        expect(page.locator("#disclosure-label")).to_have_text(
            "Your photo/video will be labeled as 'Promotional content'")
        expect(page.locator("#declaration")).to_have_text("By posting, you agree to TikTok's Music Usage Confirmation.")
        expect(page.locator("#publish")).to_be_enabled()
        self.shot("disclosure_your_brand")
        self.assertEqual(self.posts_created(), [])

    def test_branded_content_is_never_private(self):
        page = self.open_composer()
        page.check("#disclose")
        page.select_option("#privacy", "private")
        expect(page.locator("#brand-content")).to_be_disabled()
        expect(page.locator("#brand-content-note")).to_contain_text(BRANDED_PRIVATE_TEXT)
        self.shot("branded_disabled_while_only_me")
        # The other way round: with branded content checked first, "Only me" cannot be chosen.
        page.goto(self.base + "/")
        page.locator(f"input[name=account][value={self.account}]").check()
        expect(page.locator("#creator")).to_contain_text("Sandbox Creator")
        page.check("#disclose")
        page.check("#brand-content")
        only_me = page.locator("#privacy option[value=private]")
        expect(only_me).to_be_disabled()
        expect(only_me).to_have_attribute("title", BRANDED_PRIVATE_TEXT)
        expect(page.locator("#disclosure-label")).to_have_text("Your photo/video will be labeled as 'Paid partnership'")
        page.check("#brand-organic")
        expect(page.locator("#disclosure-label")).to_contain_text("'Paid partnership'")
        expect(page.locator("#declaration")).to_have_text(
            "By posting, you agree to TikTok's Branded Content Policy and Music Usage Confirmation.")
        self.shot()

    def test_a_video_longer_than_the_creators_maximum_is_refused_before_sending(self):
        self.creator(max_video_post_duration_sec=60)
        page = self.open_composer()
        long_clip = ffmpeg(
            "long.mp4", "-f", "lavfi", "-i", "color=c=navy:size=720x1280:rate=24", "-f", "lavfi", "-i", "sine",
            "-t", "65", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac",
            "-movflags", "+faststart")
        self.upload(long_clip)
        expect(page.locator("#too-long")).to_have_text(
            "This video is 65 s long; Sandbox Creator can post videos up to 60 s.")
        page.select_option("#privacy", "private")
        expect(page.locator("#publish")).to_be_disabled()
        expect(page.locator("#blockers")).to_contain_text("up to 60 s")
        page.locator("#publish").click(force=True)
        self.shot()
        self.assertEqual(self.posts_created(), [])

    def test_cannot_post_now_stops_the_flow(self):
        self.creator(posting_blocked="spam_risk_too_many_posts")
        page = self.open_composer()
        expect(page.locator("#cannot-post")).to_be_visible()
        expect(page.locator("#cannot-post")).to_contain_text("try again tomorrow")
        expect(page.locator("#composer")).to_be_hidden()
        self.shot()

    # ------------------------------------------------------------------ following posts

    def test_a_post_scheduled_five_seconds_ahead_reaches_completed(self):
        page = self.open_composer()
        self.upload(video("scheduled.mp4", "testsrc2", 3, "1080x1920"))
        page.fill("#caption", "Launch 🚀 #postato")
        # TikTok counts UTF-16 units: the rocket counts 2.
        expect(page.locator("#caption-count")).to_have_text("18 / 2200")
        page.select_option("#privacy", "private")
        page.check("input[name=when][value=later]")
        at = datetime.now(ZoneInfo(ZONE)) + timedelta(seconds=5)
        page.fill("#schedule-at", at.strftime("%Y-%m-%dT%H:%M:%S"))
        expect(page.locator("#zone")).to_contain_text(f"{ZONE} (UTC{at.strftime('%z')[:3]}:{at.strftime('%z')[3:]})")
        expect(page.locator("#publish")).to_have_text("Schedule")
        page.click("#publish")
        expect(page.locator("#result")).to_contain_text("Scheduled for")
        sent = json.loads(self.posts_created()[-1][2])
        self.assertTrue(sent["scheduledAt"].endswith(at.strftime("%z")[:3] + ":" + at.strftime("%z")[3:]), sent)
        self.assertEqual(sent["options"]["privacy"], "private")
        self.assertEqual(sent["options"]["allowComments"], False)
        post = page.locator("#post-list .post", has_text="Launch 🚀").first
        expect(post).to_have_attribute("data-status", "scheduled")
        self.shot("post_scheduled")
        expect(post).to_have_attribute("data-status", "completed", timeout=30_000)
        expect(post.locator(".steps li[aria-current=step]")).to_have_text("completed")
        self.shot()

    def test_a_failed_post_shows_its_reason_and_what_to_do(self):
        call(self.sandbox, "POST", "/_sandbox/processing-failures",
             {"open_id": DEV_CREATOR, "fail_reason": "frame_rate_check_failed"})
        page = self.open_composer()
        self.upload(video("fails.mp4", "testsrc", 3, "1080x1920"))
        page.fill("#caption", "This one fails")
        page.select_option("#privacy", "private")
        page.click("#publish")
        post = page.locator("#post-list .post", has_text="This one fails").first
        expect(post).to_have_attribute("data-status", "failed", timeout=30_000)
        expect(post.locator(".failure")).to_contain_text("Why:")
        expect(post.locator(".failure")).to_contain_text("frame_rate_check_failed")
        self.shot()

    def test_photo_post_with_reordering_cover_title_draft_edit_and_cancel(self):
        page = self.open_composer()
        page.check("input[name=postType][value=photo]")
        photos = [
            ffmpeg(f"photo{i}.jpg", "-f", "lavfi", "-i", f"color=c={c}:size=1080x1920", "-frames:v", "1")
            for i, c in enumerate(["red", "green", "blue"], start=1)
        ]
        page.set_input_files("#file", [str(p) for p in photos])
        expect(page.locator("#media .verdict .ok")).to_have_count(3, timeout=30_000)
        items = page.locator("#media .item .name")
        expect(items.first).to_contain_text("photo1.jpg")
        page.get_by_role("button", name="Move photo1.jpg later").click()
        expect(items.nth(1)).to_contain_text("photo1.jpg")
        page.locator("#media .item", has_text="photo3.jpg").get_by_role("button", name="Make cover").click()
        expect(items.first).to_contain_text("photo3.jpg")
        expect(page.locator("#media .item").first.locator(".cover-badge")).to_have_text("Cover")
        page.fill("#title", "x" * 91)
        expect(page.locator("#title-count")).to_have_text("91 / 90")
        expect(page.locator("#blockers")).to_contain_text("Shorten the title to 90 characters.")
        page.fill("#title", "Summer")
        page.fill("#caption", "Summer photo dump")
        self.shot("photos_reordered")
        page.click("#save-draft")
        sent = json.loads(self.posts_created()[-1][2])
        self.assertEqual(sent["postType"], "photo")
        self.assertNotIn("allowDuet", sent["options"])
        post = page.locator("#post-list .post", has_text="Summer photo dump").first
        expect(post).to_have_attribute("data-status", "draft")
        post.get_by_role("button", name="Edit").click()
        expect(page.locator("#compose-title")).to_have_text("Editing draft post")
        expect(page.locator("#caption")).to_have_value("Summer photo dump")
        page.fill("#caption", "Summer photo dump, edited")
        page.click("#save-draft")
        post = page.locator("#post-list .post", has_text="Summer photo dump, edited").first
        expect(post).to_have_attribute("data-status", "draft")
        post.get_by_role("button", name="Cancel post").click()
        expect(post).to_have_attribute("data-status", "canceled")
        self.shot()

    # ------------------------------------------------------------------ the page elsewhere than the runner

    def test_without_the_runners_dev_key_the_page_asks_for_a_key_and_keeps_it_out_of_addresses(self):
        page = self.page
        # Hosted next to the API in AWS there is no dev-key route.
        page.route("**/composer/dev-key", lambda route: route.fulfill(status=404, body="not here"))
        page.goto(self.base + "/")
        expect(page.locator("#key-panel")).to_be_visible()
        expect(page.locator("#app")).to_be_hidden()
        page.fill("#key-input", "pk_wrong")
        page.click("#key-form button[type=submit]")
        expect(page.locator("#key-status")).to_have_text("That key was refused.")
        page.fill("#key-input", self.key)
        page.click("#key-form button[type=submit]")
        expect(page.locator("#app")).to_be_visible()
        expect(page.locator("#key-status")).to_contain_text("Signed in with your key")
        self.assertNotIn(self.key, page.url)
        self.assertFalse([url for _, url, _ in self.sent if self.key in url], "the key never travels in an address")
        self.shot()

    def test_the_rules_module_counts_and_dates_as_tiktok_and_rfc_3339_do(self):
        self.page.goto(self.base + "/")
        results = self.page.evaluate("""async () => {
            const r = await import('/composer/rules.js');
            const form = {postType: 'photo', media: [{status: 'valid'}], caption: '', title: '', privacy: 'public',
                          disclose: true, brandOrganic: false, brandContent: false, when: 'now'};
            return {
                emoji: r.utf16Length('👍🏽 ok'),
                summer: r.rfc3339Local('2026-07-01T10:00:00'),
                winter: r.rfc3339Local('2026-12-01T10:00:00'),
                both: r.disclosureLabel({disclose: true, brandOrganic: true, brandContent: true}),
                blockers: r.publishBlockers(form, {canPost: true, nickname: 'N', maxVideoDurationSec: 60}),
            };
        }""")
        self.assertEqual(results["emoji"], 7)
        self.assertEqual(results["summer"], "2026-07-01T10:00:00+02:00")
        self.assertEqual(results["winter"], "2026-12-01T10:00:00+01:00")
        self.assertEqual(results["both"], "Your photo/video will be labeled as 'Paid partnership'")
        self.assertEqual(results["blockers"], ["Add 2 to 35 photos (now 1).", DISCLOSURE_TEXT])
        self.shot_taken = True

    # ------------------------------------------------------------------ accessibility and layout

    def test_phone_width_layout_and_every_control_labelled(self):
        self.context.close()
        self.open_browser(375, 812)
        page = self.open_composer()
        self.upload(video("clip.mp4", "testsrc2", 3, "1080x1920"))
        width = page.evaluate("() => document.documentElement.scrollWidth")
        self.assertLessEqual(width, 375, "no sideways scrolling at phone width")
        unlabelled = page.evaluate("""() => [...document.querySelectorAll('input, select, textarea, button')]
            .filter(e => e.offsetParent !== null)
            .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !e.textContent.trim())
            .map(e => e.id || e.outerHTML.slice(0, 60))""")
        self.assertEqual(unlabelled, [])
        # Keyboard: the privacy choice is reachable with Tab from the caption, in reading order.
        page.focus("#caption")
        page.keyboard.press("Tab")
        self.assertEqual(page.evaluate("() => document.activeElement.id"), "privacy")
        self.shot()


class AuditedAppTest(BrowserCase):
    """A runner whose TikTok app counts as audited: the dev creator is public, every audience can be chosen, and a
    public post gets TikTok's link."""

    runner = "AUDITED"

    def test_a_public_post_shows_tiktoks_link_once_public(self):
        page = self.open_composer()
        labels = page.locator("#privacy option:not([value=''])").all_inner_texts()
        self.assertEqual(labels, ["Everyone", "Friends", "Only me"])
        expect(page.locator("#privacy-note")).to_have_text("")
        self.upload(video("public.mp4", "testsrc2", 3, "1080x1920"))
        page.fill("#caption", "Public launch")
        page.select_option("#privacy", "public")
        for box in ("#allow-comment", "#allow-duet", "#allow-stitch"):
            page.check(box)
        # Branded content is allowed with Everyone, and takes TikTok's Branded Content Policy declaration.
        page.check("#disclose")
        page.check("#brand-content")
        expect(page.locator("#declaration")).to_contain_text("Branded Content Policy")
        page.click("#publish")
        sent = json.loads(self.posts_created()[-1][2])
        self.assertEqual(sent["options"]["privacy"], "public")
        self.assertTrue(sent["options"]["brandContent"])
        self.assertTrue(sent["options"]["allowDuet"])
        post = page.locator("#post-list .post", has_text="Public launch").first
        expect(post).to_have_attribute("data-status", "completed", timeout=30_000)
        link = post.locator("a.post-link")
        expect(link).to_have_text("View on TikTok")
        expect(link).to_have_attribute("href", contains("tiktok.com/@sandbox.creator/"))
        self.shot()


if __name__ == "__main__":
    unittest.main()
