// The reference "Post to TikTok" page: accounts, upload with the validator's verdict, a composer that follows
// TikTok's Content Sharing Guidelines, and the posts with their live status. It talks only to the public API.

import { Api, ApiError } from "./api.js";
import {
  BRANDED_PRIVATE_TEXT,
  CAPTION_MAX,
  DISCLOSURE_INCOMPLETE_TEXT,
  LIFECYCLE,
  PHOTOS_MAX,
  PHOTO_TITLE_MAX,
  PRIVACY_LABELS,
  STATUS_TEXT,
  declarationParts,
  disclosureLabel,
  formatSeconds,
  isSettled,
  localInputValue,
  offsetOf,
  publishBlockers,
  rfc3339Local,
  timeZoneName,
  tooLongForCreator,
  utf16Length,
} from "./rules.js";

const KEY_STORAGE = "postato.apiKey";
const CALLBACK_PATH = "/v1/accounts/tiktok/callback";
const POLL_MS = 1000;
const CONTENT_TYPES = {
  mp4: "video/mp4", m4v: "video/mp4", mov: "video/quicktime", mpg: "video/mpeg", mpeg: "video/mpeg",
  ts: "video/mp2t", jpg: "image/jpeg", jpeg: "image/jpeg", png: "image/png", webp: "image/webp",
};

const $ = (id) => document.getElementById(id);
const state = {
  api: null,
  routes: new Set(),
  accounts: [],
  accountId: null,
  creator: null,
  editing: null,
  pollTimer: null,
  form: blankForm("video"),
};

function blankForm(postType) {
  return {
    postType,
    media: [],
    caption: "",
    title: "",
    privacy: "",
    coverMs: null,
    when: "now",
    scheduleAt: "",
    // One key per composed post: pressing Publish again after a lost answer cannot create a second post.
    idempotencyKey: crypto.randomUUID ? crypto.randomUUID() : String(Math.random()).slice(2) + Date.now(),
  };
}

// ------------------------------------------------------------------ elements

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name in node && typeof value !== "string") node[name] = value;
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat(Infinity)) {
    if (child !== undefined && child !== null && child !== false) node.append(child);
  }
  return node;
}

function errorBox(error) {
  const box = el("div", { class: "alert", role: "alert" }, el("p", {}, error.message));
  if (error instanceof ApiError && error.details.length) {
    box.append(el("ul", {}, error.details.map((d) => el("li", {}, el("code", {}, d.field), ": ", d.message))));
  }
  return box;
}

function when(iso) {
  const date = new Date(iso);
  const text = date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
  return `${text} (${timeZoneName()}, UTC${offsetOf(date)})`;
}

// ------------------------------------------------------------------ start

async function start() {
  const config = await fetch("composer/config.json").then((r) => (r.ok ? r.json() : {})).catch(() => ({}));
  const baseUrl = config.apiBaseUrl || window.location.origin;
  if (handleConnectReturn()) return;
  let key = sessionStorage.getItem(KEY_STORAGE);
  let origin = "your key";
  if (!key) {
    // Only the local runner serves its dev key; elsewhere the user pastes one.
    const dev = await fetch("composer/dev-key").then((r) => (r.ok ? r.json() : null)).catch(() => null);
    if (dev?.apiKey) {
      key = dev.apiKey;
      origin = "the local runner's dev key";
    }
  }
  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    useKey(baseUrl, $("key-input").value.trim(), "your key");
  });
  if (key) await useKey(baseUrl, key, origin);
  else $("key-panel").hidden = false;
}

async function useKey(baseUrl, key, origin) {
  state.api = new Api(baseUrl, key);
  try {
    await state.api.get("/v1/accounts");
  } catch (error) {
    sessionStorage.removeItem(KEY_STORAGE);
    $("key-panel").hidden = false;
    $("key-status").replaceChildren(error.status === 401 ? "That key was refused." : error.message);
    return;
  }
  sessionStorage.setItem(KEY_STORAGE, key);
  $("key-panel").hidden = true;
  $("app").hidden = false;
  $("key-status").replaceChildren(
    `Signed in with ${origin}. `,
    el("button", { type: "button", class: "link", onclick: forgetKey }, "Forget key"),
  );
  state.routes = await state.api.routes().catch(() => new Set());
  wireComposer();
  await loadAccounts();
  await loadPosts();
}

function forgetKey() {
  sessionStorage.removeItem(KEY_STORAGE);
  window.location.reload();
}

// With CONNECT_SUCCESS_URL pointing at this page (hosted next to the API), TikTok's round trip ends here with
// `connection` (to claim) or `error`: a popup hands the outcome to the page that opened it, which claims it.
function handleConnectReturn() {
  const params = new URLSearchParams(window.location.search);
  if (!params.has("connection") && !params.has("error")) return false;
  const outcome = { connection: params.get("connection"), error: params.get("errorDescription") || params.get("error") };
  let fromOurPopup = false;
  try {
    fromOurPopup = window.opener?.location.origin === window.location.origin;
  } catch {
    // Opened by another site: show the outcome here instead.
  }
  if (fromOurPopup) {
    window.opener.postMessage({ postatoConnect: outcome }, window.location.origin);
    window.close();
    return true;
  }
  history.replaceState(null, "", window.location.pathname);
  // Not from this page's popup: claimed with this page's key, which succeeds only for the workspace that started it.
  queueMicrotask(async () => {
    const claimed = outcome.error ? outcome : await claim(outcome.connection);
    $("connect-status").replaceChildren(claimed.error || "Account connected.");
    if (claimed.accountId) await loadAccounts(claimed.accountId);
  });
  return false;
}

// TikTok's consent alone attaches nothing: the workspace that started the connection claims it with its key.
async function claim(connection) {
  try {
    const account = await state.api.request("POST", `/v1/accounts/tiktok/connections/${encodeURIComponent(connection)}`);
    return { accountId: account.id };
  } catch (error) {
    return { error: error.message };
  }
}

// ------------------------------------------------------------------ accounts

async function loadAccounts(select) {
  const list = await state.api.get("/v1/accounts");
  state.accounts = list.data;
  const still = state.accounts.find((a) => a.id === (select || state.accountId));
  const chosen = still || state.accounts.find((a) => a.status === "connected");
  renderAccounts();
  await chooseAccount(chosen?.id ?? null);
}

function renderAccounts() {
  const items = state.accounts.map((account) => {
    const connected = account.status === "connected";
    const radio = el("input", {
      type: "radio",
      name: "account",
      value: account.id,
      checked: account.id === state.accountId,
      disabled: !connected,
      onchange: () => chooseAccount(account.id),
    });
    return el(
      "li",
      { class: "account", "data-account": account.id },
      el("label", {}, radio, " ", el("strong", {}, account.displayName || account.id),
        account.username ? el("span", { class: "handle" }, ` @${account.username}`) : null),
      el("span", { class: `badge ${account.status}` }, account.status.replace("_", " ")),
      connected ? null : el("button", { type: "button", onclick: () => connect(account) }, "Reconnect"),
    );
  });
  if (!items.length) items.push(el("li", {}, "No account yet: connect one."));
  $("account-list").replaceChildren(...items);
}

$("connect")?.addEventListener("click", () => connect(null));

// TikTok's OAuth in a popup: locally the callback answers on this page's origin, so the page reads the answer; in
// AWS CONNECT_SUCCESS_URL brings the popup back to this page, which posts the outcome here.
async function connect(account) {
  const status = $("connect-status");
  status.replaceChildren(account ? `Reconnecting ${account.displayName}…` : "Opening TikTok…");
  let started;
  try {
    started = await state.api.request("POST", "/v1/accounts/tiktok/connect");
  } catch (error) {
    status.replaceChildren(error.message);
    return;
  }
  const popup = window.open(started.authorizeUrl, "tiktok-connect", "width=520,height=720");
  if (!popup) {
    status.replaceChildren("Allow pop-ups for this page to connect an account.");
    return;
  }
  const outcome = await new Promise((resolve) => {
    const onMessage = (event) => {
      if (event.origin === window.location.origin && event.data?.postatoConnect) finish(event.data.postatoConnect);
    };
    const timer = setInterval(() => {
      if (popup.closed) return finish({});
      try {
        if (popup.location.pathname === CALLBACK_PATH && popup.document.readyState === "complete") {
          const body = JSON.parse(popup.document.body.innerText || "{}");
          popup.close();
          finish(body.connectionId ? { connection: body.connectionId } : { error: body.error?.message || "TikTok did not connect." });
        }
      } catch {
        // Still at TikTok (another origin): keep waiting.
      }
    }, 250);
    function finish(result) {
      clearInterval(timer);
      window.removeEventListener("message", onMessage);
      resolve(result);
    }
    window.addEventListener("message", onMessage);
  });
  if (outcome.connection) Object.assign(outcome, await claim(outcome.connection));
  if (outcome.error) status.replaceChildren(outcome.error);
  await loadAccounts(outcome.accountId);
  const connected = state.accounts.find((a) => a.id === outcome.accountId);
  if (connected) status.replaceChildren(`Connected ${connected.displayName}.`);
  else if (!outcome.error) status.replaceChildren("The TikTok window closed before connecting.");
}

// ------------------------------------------------------------------ creator info

async function chooseAccount(id) {
  state.accountId = id;
  state.creator = null;
  renderAccounts();
  const creatorBox = $("creator");
  $("cannot-post").hidden = true;
  $("composer").hidden = true;
  if (!id) {
    creatorBox.replaceChildren("Connect a TikTok account to post.");
    return;
  }
  creatorBox.replaceChildren("Asking TikTok what this creator can post…");
  try {
    // Fresh every time the composer is shown: TikTok's rule, and the creator may have changed settings.
    state.creator = await state.api.get(`/v1/accounts/${id}/creator-info`);
  } catch (error) {
    const account = state.accounts.find((a) => a.id === id);
    creatorBox.replaceChildren(errorBox(error));
    if (error.code === "reconnect_required" && account) {
      creatorBox.append(el("button", { type: "button", onclick: () => connect(account) }, "Reconnect"));
    }
    return;
  }
  renderCreator();
}

function renderCreator() {
  const creator = state.creator;
  $("creator").replaceChildren(
    "Posting to TikTok as ",
    el("strong", { id: "nickname" }, creator.nickname),
    creator.username ? el("span", { class: "handle" }, ` @${creator.username}`) : "",
  );
  if (!creator.canPost) {
    // TikTok's rule: when the creator cannot post now, stop and ask them to try later.
    $("cannot-post").replaceChildren(
      el("p", {}, el("strong", {}, "You cannot post to this account right now. "), creator.cannotPostReason?.message),
      el("button", { type: "button", onclick: () => chooseAccount(state.accountId) }, "Try again"),
    );
    $("cannot-post").hidden = false;
    return;
  }
  $("composer").hidden = false;
  buildPrivacy();
  // Interactions start unchecked every time (TikTok's rule) and are greyed where the creator turned them off.
  const off = [];
  for (const [name, disabled, label] of [
    ["comment", creator.commentDisabled, "comments"],
    ["duet", creator.duetDisabled, "duets"],
    ["stitch", creator.stitchDisabled, "stitches"],
  ]) {
    const box = $(`allow-${name}`);
    box.checked = false;
    box.disabled = disabled;
    $(`${name}-row`).classList.toggle("off", disabled);
    $(`${name}-row`).title = disabled ? `${creator.nickname} turned off ${label} in TikTok` : "";
    if (disabled && (name === "comment" || state.form.postType === "video")) off.push(label);
  }
  $("interactions-note").textContent = off.length
    ? `${creator.nickname} turned off ${off.join(" and ")} in TikTok.`
    : "";
  refresh();
}

function buildPrivacy() {
  const select = $("privacy");
  const creator = state.creator;
  // No default: the empty choice is selected and cannot be chosen back, so the user must pick one.
  const options = [el("option", { value: "", disabled: true, selected: "" }, "Choose who can view this post")];
  for (const value of creator.privacyOptions) {
    options.push(el("option", { value }, PRIVACY_LABELS[value] || value));
  }
  select.replaceChildren(...options);
  state.form.privacy = "";
  if (creator.appAudited === false) {
    $("privacy-note").textContent =
      "This app has not passed TikTok's audit yet, so TikTok accepts only “Only me” posts, from private accounts.";
  } else {
    $("privacy-note").textContent = "";
  }
}

// ------------------------------------------------------------------ composer

function wireComposer() {
  for (const radio of document.querySelectorAll("input[name=postType]")) {
    radio.addEventListener("change", () => setPostType(radio.value));
  }
  const file = $("file");
  file.addEventListener("change", () => {
    addFiles([...file.files]);
    file.value = "";
  });
  const drop = $("drop");
  drop.addEventListener("dragover", (event) => {
    event.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    addFiles([...event.dataTransfer.files]);
  });
  $("caption").addEventListener("input", () => refresh());
  $("title").addEventListener("input", () => refresh());
  $("privacy").addEventListener("change", () => refresh());
  for (const id of ["allow-comment", "allow-duet", "allow-stitch", "ai-generated", "auto-music"]) {
    $(id).addEventListener("change", () => refresh());
  }
  $("disclose").addEventListener("change", () => {
    if (!$("disclose").checked) {
      $("brand-organic").checked = false;
      $("brand-content").checked = false;
    }
    refresh();
  });
  $("brand-organic").addEventListener("change", () => refresh());
  $("brand-content").addEventListener("change", () => refresh());
  for (const radio of document.querySelectorAll("input[name=when]")) {
    radio.addEventListener("change", () => {
      if (radio.value === "later" && !$("schedule-at").value) {
        $("schedule-at").value = localInputValue(new Date(Date.now() + 10 * 60_000));
      }
      refresh();
    });
  }
  $("schedule-at").addEventListener("input", () => refresh());
  $("cover-at").addEventListener("input", () => {
    const ms = Number($("cover-at").value);
    state.form.coverMs = ms;
    $("cover-at-out").textContent = formatSeconds(ms);
    $("cover-frame").currentTime = ms / 1000;
  });
  $("composer").addEventListener("submit", (event) => {
    event.preventDefault();
    submit("publish");
  });
  $("save-draft").addEventListener("click", () => submit("draft"));
  $("cancel-edit").addEventListener("click", () => resetComposer());
  $("status-filter").addEventListener("change", () => loadPosts());
  $("refresh-posts").addEventListener("click", () => loadPosts());
  setPostType("video");
}

function setPostType(postType) {
  state.form.media.forEach((item) => item.previewUrl && URL.revokeObjectURL(item.previewUrl));
  state.form.postType = postType;
  state.form.media = [];
  state.form.coverMs = null;
  const video = postType === "video";
  $("file").multiple = !video;
  $("file").accept = video ? "video/mp4,video/quicktime,video/mpeg,video/mp2t" : "image/jpeg,image/png,image/webp";
  $("file-label").textContent = video ? "Choose a video" : "Choose photos";
  $("title-row").hidden = video;
  $("music-row").hidden = video;
  // Photos show only "Allow Comment" (TikTok's rule): duet and stitch do not exist for them.
  for (const row of document.querySelectorAll(".video-only")) row.hidden = !video;
  if (!video) {
    $("allow-duet").checked = false;
    $("allow-stitch").checked = false;
  }
  renderMedia();
  refresh();
}

function contentTypeOf(file) {
  if (file.type) return file.type;
  return CONTENT_TYPES[file.name.split(".").pop().toLowerCase()] || "application/octet-stream";
}

function addFiles(files) {
  if (!files.length) return;
  const form = state.form;
  if (form.postType === "video") {
    form.media = [];
    files = files.slice(0, 1);
  } else {
    files = files.slice(0, PHOTOS_MAX - form.media.length);
  }
  for (const file of files) {
    const item = {
      file,
      fileName: file.name,
      status: "uploading",
      loaded: 0,
      total: file.size,
      previewUrl: URL.createObjectURL(file),
    };
    form.media.push(item);
    upload(item);
  }
  renderMedia();
  refresh();
}

async function upload(item) {
  const kind = state.form.postType === "video" ? "video" : "image";
  try {
    const media = await state.api.request("POST", "/v1/media", {
      kind,
      contentType: contentTypeOf(item.file),
      sizeBytes: item.file.size,
      fileName: item.file.name,
    });
    item.id = media.id;
    await state.api.upload(media.upload, item.file, (loaded, total) => {
      item.loaded = loaded;
      item.total = total;
      renderProgress(item);
    });
    item.status = "validating";
    renderMedia();
    const checked = await waitForVerdict(media.id);
    item.status = checked.status;
    item.verdict = checked.verdict;
    item.durationMs = checked.verdict?.facts?.durationMs;
  } catch (error) {
    item.status = "invalid";
    item.error = error;
  }
  if (state.form.media.includes(item)) {
    renderMedia();
    refresh();
  }
}

async function waitForVerdict(id) {
  for (let i = 0; i < 600; i++) {
    const media = await state.api.get(`/v1/media/${id}`);
    if (media.status === "valid" || media.status === "invalid") return media;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error("The check did not finish within 2.5 minutes; reload the page to see it.");
}

function renderProgress(item) {
  const bar = item.node?.querySelector("progress");
  if (!bar) return;
  bar.max = item.total || 1;
  bar.value = item.loaded;
  const pct = Math.floor((100 * item.loaded) / (item.total || 1));
  item.node.querySelector(".pct").textContent = `${pct}%`;
}

function renderMedia() {
  const form = state.form;
  const video = form.postType === "video";
  const nodes = form.media.map((item, index) => {
    const preview = video
      ? el("video", { src: item.previewUrl, controls: true, muted: true, playsinline: true, class: "preview",
        "aria-label": `Preview of ${item.fileName}` })
      : el("img", { src: item.previewUrl, alt: `Photo ${index + 1}: ${item.fileName}`, class: "thumb" });
    const node = el(
      "li",
      { class: `item ${item.status}`, "data-status": item.status },
      preview,
      el("div", { class: "item-body" },
        el("p", { class: "name" }, item.fileName,
          !video && index === 0 ? el("span", { class: "badge cover-badge" }, "Cover") : ""),
        item.status === "uploading"
          ? el("p", { class: "progress" },
            el("progress", { max: item.total || 1, value: item.loaded, "aria-label": `Uploading ${item.fileName}` }),
            el("span", { class: "pct" }, "0%"))
          : null,
        item.status === "validating"
          ? el("p", { class: "hint" }, "Uploaded. Checking it against TikTok's specs…")
          : null,
        verdictView(item),
        !video ? photoControls(index) : null),
    );
    item.node = node;
    return node;
  });
  const list = el("ul", { class: video ? "media-list" : "media-list photos" }, nodes);
  const head = video || !form.media.length ? null
    : el("p", { class: "hint" }, `${form.media.length} of ${PHOTOS_MAX} photos. The first one is the cover: ` +
      "use “Make cover” or the arrows to reorder.");
  $("media").replaceChildren(...[head, list].filter(Boolean));
  form.media.forEach(renderProgress);
  renderCoverPicker();
}

function photoControls(index) {
  const last = state.form.media.length - 1;
  const name = state.form.media[index].fileName;
  return el("div", { class: "reorder" },
    el("button", { type: "button", disabled: index === 0, onclick: () => movePhoto(index, index - 1),
      "aria-label": `Move ${name} earlier` }, "↑"),
    el("button", { type: "button", disabled: index === last, onclick: () => movePhoto(index, index + 1),
      "aria-label": `Move ${name} later` }, "↓"),
    index === 0 ? null : el("button", { type: "button", onclick: () => movePhoto(index, 0) }, "Make cover"),
    el("button", { type: "button", onclick: () => removePhoto(index), "aria-label": `Remove ${name}` }, "Remove"));
}

function movePhoto(from, to) {
  const [item] = state.form.media.splice(from, 1);
  state.form.media.splice(to, 0, item);
  renderMedia();
  // Keep the keyboard user's place: focus follows the moved photo.
  item.node?.querySelector(".reorder button:not([disabled])")?.focus();
  refresh();
}

function removePhoto(index) {
  const [item] = state.form.media.splice(index, 1);
  URL.revokeObjectURL(item.previewUrl);
  renderMedia();
  refresh();
}

function verdictView(item) {
  if (item.error) return errorBox(item.error);
  const verdict = item.verdict;
  if (!verdict) return null;
  const f = verdict.facts || {};
  const facts = [];
  if (f.durationMs) facts.push(["Duration", formatSeconds(f.durationMs)]);
  const w = f.displayWidth || f.width;
  const h = f.displayHeight || f.height;
  if (w && h) facts.push(["Resolution", `${w} × ${h}`]);
  if (f.frameRate) facts.push(["Frame rate", `${Number(f.frameRate.toFixed(2))} fps`]);
  if (f.videoCodec) facts.push(["Video", [f.videoCodec, f.videoProfile].filter(Boolean).join(" ")]);
  if (f.audioCodec) facts.push(["Audio", f.audioCodec]);
  if (f.container) facts.push(["Container", f.container]);
  facts.push(["Size", `${(f.sizeBytes / 1e6).toFixed(1)} MB`]);
  const tooLong = state.form.postType === "video" ? tooLongForCreator(state.form, state.creator) : "";
  return el("div", { class: "verdict" },
    el("p", { class: verdict.accepted ? "ok" : "bad" },
      verdict.accepted ? "✓ Meets TikTok's specs" : "✗ Does not meet TikTok's specs"),
    el("dl", { class: "facts" }, facts.map(([k, v]) => [el("dt", {}, k), el("dd", {}, v)])),
    verdict.warnings.length
      ? el("ul", { class: "warnings", "aria-label": "Warnings" },
        verdict.warnings.map((w) => el("li", { "data-code": w.code }, "⚠ ", w.message)))
      : null,
    verdict.violations.length
      ? el("ul", { class: "violations", "aria-label": "Problems and how to fix them" },
        verdict.violations.map((v) => el("li", { "data-code": v.code }, el("strong", {}, v.code), ": ", v.message)))
      : null,
    tooLong ? el("p", { class: "bad", id: "too-long", role: "alert" }, tooLong) : null);
}

function renderCoverPicker() {
  const item = state.form.postType === "video" ? state.form.media[0] : null;
  const ready = item && item.status === "valid" && item.durationMs;
  $("cover-picker").hidden = !ready;
  if (!ready) return;
  const range = $("cover-at");
  range.max = String(Math.max(0, item.durationMs - 100));
  range.value = String(state.form.coverMs ?? 0);
  $("cover-at-out").textContent = formatSeconds(state.form.coverMs ?? 0);
  if ($("cover-frame").src !== item.previewUrl) $("cover-frame").src = item.previewUrl;
}

// Reads the form into state, then applies every rule the page shows before sending.
function refresh() {
  const form = state.form;
  form.caption = $("caption").value;
  form.title = $("title").value;
  form.privacy = $("privacy").value;
  form.disclose = $("disclose").checked;
  form.brandOrganic = $("brand-organic").checked;
  form.brandContent = $("brand-content").checked;
  form.when = document.querySelector("input[name=when]:checked").value;
  form.scheduleAt = $("schedule-at").value;
  form.uploading = form.media.some((m) => m.status === "uploading" || m.status === "validating");

  const captionLength = utf16Length(form.caption);
  $("caption-count").textContent = `${captionLength} / ${CAPTION_MAX}`;
  $("caption-count").classList.toggle("over", captionLength > CAPTION_MAX);
  const titleLength = utf16Length(form.title);
  $("title-count").textContent = `${titleLength} / ${PHOTO_TITLE_MAX}`;
  $("title-count").classList.toggle("over", titleLength > PHOTO_TITLE_MAX);

  // Branded content is never private: "Only me" is off while it is checked, and it is off while "Only me" is chosen.
  const privateOption = $("privacy").querySelector("option[value=private]");
  if (privateOption) {
    privateOption.disabled = form.brandContent;
    privateOption.title = form.brandContent ? BRANDED_PRIVATE_TEXT : "";
  }
  const audited = state.creator?.appAudited !== false;
  for (const option of $("privacy").querySelectorAll("option[value]:not([value='']):not([value=private])")) {
    option.disabled = !audited;
    option.title = audited ? "" : "Only “Only me” until this app passes TikTok's audit";
  }
  $("disclosure-options").hidden = !form.disclose;
  const brandedBlocked = form.privacy === "private" && !form.brandContent;
  $("brand-content").disabled = brandedBlocked;
  $("brand-content-row").classList.toggle("off", brandedBlocked);
  $("brand-content-note").textContent = brandedBlocked
    ? `${BRANDED_PRIVATE_TEXT} Choose another audience to mark this as branded content.`
    : "";
  $("disclosure-label").textContent = disclosureLabel(form);
  $("declaration").replaceChildren(
    ...declarationParts(form).map((part) =>
      part.href ? el("a", { href: part.href, target: "_blank", rel: "noopener" }, part.text) : part.text),
  );

  $("schedule-row").hidden = form.when !== "later";
  const at = form.scheduleAt ? new Date(form.scheduleAt) : new Date();
  $("zone").textContent = `In your time zone: ${timeZoneName()} (UTC${offsetOf(at)}).`;

  const blockers = publishBlockers(form, state.creator);
  const publish = $("publish");
  publish.textContent = state.editing ? "Save changes" : form.when === "later" ? "Schedule" : "Publish";
  publish.disabled = blockers.length > 0;
  // TikTok's wording on hover for an incomplete disclosure; otherwise the first missing thing.
  const hover = blockers.includes(DISCLOSURE_INCOMPLETE_TEXT) ? DISCLOSURE_INCOMPLETE_TEXT : blockers[0] || "";
  publish.title = hover;
  $("publish-wrap").title = hover;
  $("save-draft").disabled = form.uploading || !form.media.length || !state.creator?.canPost;
  $("blockers").replaceChildren(...blockers.map((b) => el("li", {}, b)));
  const tooLong = tooLongForCreator(form, state.creator);
  const shown = $("too-long");
  if (tooLong && !shown && form.media[0]?.node) renderMedia();
  if (!tooLong && shown) shown.remove();
}

function requestBody(intent) {
  const form = state.form;
  const photo = form.postType === "photo";
  const options = {
    allowComments: $("allow-comment").checked,
    brandOrganic: form.disclose && form.brandOrganic,
    brandContent: form.disclose && form.brandContent,
    aiGenerated: $("ai-generated").checked,
  };
  if (form.privacy) options.privacy = form.privacy;
  if (photo) {
    options.title = form.title;
    options.autoAddMusic = $("auto-music").checked;
  } else {
    options.allowDuet = $("allow-duet").checked;
    options.allowStitch = $("allow-stitch").checked;
    if (form.coverMs !== null) options.coverTimestampMs = form.coverMs;
  }
  const body = { content: form.caption, options, status: intent };
  if (form.when === "later") body.scheduledAt = rfc3339Local(form.scheduleAt);
  else if (state.editing) body.scheduledAt = null;
  if (!state.editing) {
    Object.assign(body, {
      platform: "tiktok",
      accountId: state.accountId,
      postType: form.postType,
      media: form.media.map((m) => ({ id: m.id })),
    });
  }
  return body;
}

async function submit(intent) {
  const result = $("result");
  result.replaceChildren("Sending…");
  try {
    const post = state.editing
      ? await state.api.request("PATCH", `/v1/posts/${state.editing}`, requestBody(intent))
      : await state.api.request("POST", "/v1/posts", requestBody(intent), {
        "idempotency-key": state.form.idempotencyKey,
      });
    const text =
      post.status === "draft" ? "Draft saved." :
        state.form.when === "later"
          ? `Scheduled for ${when(post.scheduledAt)}.`
          : "Sent: publishing now. Follow it below.";
    resetComposer();
    $("result").replaceChildren(el("p", { class: "ok" }, text));
    await loadPosts();
  } catch (error) {
    result.replaceChildren(errorBox(error));
  }
}

function resetComposer() {
  state.editing = null;
  const postType = document.querySelector("input[name=postType]:checked").value;
  $("composer").reset();
  state.form = blankForm(postType);
  for (const radio of document.querySelectorAll("input[name=postType]")) {
    radio.checked = radio.value === postType;
    radio.disabled = false;
  }
  $("drop").hidden = false;
  $("cancel-edit").hidden = true;
  $("compose-title").textContent = "New post";
  $("result").replaceChildren();
  setPostType(postType);
  if (state.creator) renderCreator();
}

// Loads a draft or scheduled post into the composer; its media stay as they are (edit them by posting anew).
async function editPost(post) {
  if (post.accountId !== state.accountId) await chooseAccount(post.accountId);
  resetComposer();
  state.editing = post.id;
  for (const radio of document.querySelectorAll("input[name=postType]")) {
    radio.checked = radio.value === post.postType;
    radio.disabled = true;
  }
  setPostType(post.postType);
  $("drop").hidden = true;
  state.form.media = await Promise.all(post.media.map(async ({ id }) => {
    const media = await state.api.get(`/v1/media/${id}`);
    return { id, fileName: media.fileName || id, status: media.status, verdict: media.verdict,
      durationMs: media.verdict?.facts?.durationMs };
  }));
  const o = post.options;
  $("caption").value = post.content;
  $("title").value = o.title || "";
  if (o.privacy && !$("privacy").querySelector(`option[value=${o.privacy}]`)?.disabled) $("privacy").value = o.privacy;
  $("allow-comment").checked = o.allowComments && !$("allow-comment").disabled;
  $("allow-duet").checked = o.allowDuet && !$("allow-duet").disabled && post.postType === "video";
  $("allow-stitch").checked = o.allowStitch && !$("allow-stitch").disabled && post.postType === "video";
  $("disclose").checked = o.brandContent || o.brandOrganic;
  $("brand-organic").checked = o.brandOrganic;
  $("brand-content").checked = o.brandContent;
  $("ai-generated").checked = o.aiGenerated;
  $("auto-music").checked = o.autoAddMusic;
  state.form.coverMs = o.coverTimestampMs ?? null;
  const later = post.scheduledAt && new Date(post.scheduledAt) > new Date();
  document.querySelector(`input[name=when][value=${later ? "later" : "now"}]`).checked = true;
  if (later) $("schedule-at").value = localInputValue(new Date(post.scheduledAt));
  $("compose-title").textContent = `Editing ${post.status} post`;
  $("cancel-edit").hidden = false;
  renderMedia();
  refresh();
  $("compose").focus();
}

// ------------------------------------------------------------------ posts

async function loadPosts() {
  const status = $("status-filter").value;
  let posts;
  try {
    posts = await state.api.get(`/v1/posts?limit=50${status ? `&status=${status}` : ""}`);
  } catch (error) {
    $("post-list").replaceChildren(el("li", {}, errorBox(error)));
    return;
  }
  renderPosts(posts.data);
  clearTimeout(state.pollTimer);
  // Live progress: poll while anything is on its way; TikTok's processing takes seconds to minutes.
  if (posts.data.some((p) => !isSettled(p.status))) state.pollTimer = setTimeout(loadPosts, POLL_MS);
}

function renderPosts(posts) {
  if (!posts.length) {
    $("post-list").replaceChildren(el("li", { class: "hint" }, "No posts yet."));
    return;
  }
  $("post-list").replaceChildren(...posts.map(postView));
}

function postView(post) {
  const account = state.accounts.find((a) => a.id === post.accountId);
  const steps = LIFECYCLE.includes(post.status)
    ? el("ol", { class: "steps", "aria-label": "Progress" }, LIFECYCLE.map((step, i) => {
      const at = LIFECYCLE.indexOf(post.status);
      return el("li", { class: i < at ? "done" : i === at ? "now" : "", "aria-current": i === at ? "step" : false },
        step);
    }))
    : null;
  const actions = [];
  if (post.status === "draft" || post.status === "scheduled") {
    actions.push(el("button", { type: "button", onclick: () => editPost(post) }, "Edit"));
    actions.push(action("Cancel post", "DELETE", `/v1/posts/${post.id}`));
  }
  // Offered only where the API has the route. Retry without a body publishes now; the API refuses (409) what could
  // post twice. Resolve records what the user found on TikTok; "not on TikTok" makes the post retryable.
  if (post.status === "failed" && state.routes.has("/v1/posts/{id}/retry")) {
    actions.push(action("Retry", "POST", `/v1/posts/${post.id}/retry`));
  }
  if (post.status === "needs_review" && state.routes.has("/v1/posts/{id}/resolve")) {
    actions.push(action("Found on TikTok", "POST", `/v1/posts/${post.id}/resolve`, { outcome: "published" }));
    actions.push(action("Not on TikTok", "POST", `/v1/posts/${post.id}/resolve`, { outcome: "not_published" }));
  }
  return el("li", { class: `post ${post.status}`, "data-post": post.id, "data-status": post.status },
    el("div", { class: "post-head" },
      el("span", { class: `badge ${post.status}` }, post.status.replace("_", " ")),
      el("span", {}, `${post.postType} · ${account?.displayName || post.accountId}`),
      el("span", { class: "hint" }, post.options.privacy ? PRIVACY_LABELS[post.options.privacy] : "")),
    el("p", { class: "caption" }, post.content || el("em", {}, "(no caption)")),
    el("p", { class: "hint" }, STATUS_TEXT[post.status] || post.status),
    steps,
    post.scheduledAt
      ? el("p", { class: "hint" }, `${post.status === "scheduled" ? "Publishes" : "Due"} ${when(post.scheduledAt)}`)
      : null,
    post.postUrl
      ? el("p", {},
        el("a", { href: post.postUrl, target: "_blank", rel: "noopener", class: "post-link" }, "View on TikTok"))
      : null,
    post.failure ? el("div", { class: "alert failure" },
      el("p", {}, el("strong", {}, "Why: "), post.failure.message),
      el("p", { class: "hint" }, `Code ${post.failure.code}`,
        post.failure.tiktokFailReason ? ` · TikTok: ${post.failure.tiktokFailReason}` : "",
        post.failure.logId ? ` · TikTok log id ${post.failure.logId}` : "")) : null,
    post.warnings.length
      ? el("ul", { class: "warnings" }, post.warnings.map((w) => el("li", {}, "⚠ ", w.message)))
      : null,
    actions.length ? el("div", { class: "actions" }, actions) : null);
}

// A button that calls the API and then shows the posts as they now are (or the API's refusal).
function action(label, method, path, body) {
  return el("button", { type: "button", onclick: () => act(method, path, body) }, label);
}

async function act(method, path, body) {
  try {
    await state.api.request(method, path, body);
  } catch (error) {
    $("post-list").prepend(el("li", {}, errorBox(error)));
    return;
  }
  await loadPosts();
}

start();
