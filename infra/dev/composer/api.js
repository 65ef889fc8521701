// The public API as the page uses it: every call with the API key as a bearer token, errors as ApiError with the
// API's code, message and per-field details.

export class ApiError extends Error {
  constructor(status, body) {
    const error = body?.error ?? {};
    super(error.message || `the API answered ${status}`);
    this.status = status;
    this.code = error.code || "http_" + status;
    this.details = error.details || [];
  }
}

export class Api {
  constructor(baseUrl, key) {
    this.baseUrl = baseUrl.replace(/\/$/, "");
    this.key = key;
  }

  async request(method, path, body, extraHeaders = {}) {
    const headers = { authorization: `Bearer ${this.key}`, ...extraHeaders };
    if (body !== undefined) headers["content-type"] = "application/json";
    const response = await fetch(this.baseUrl + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    const json = text ? JSON.parse(text) : null;
    if (!response.ok) throw new ApiError(response.status, json);
    return json;
  }

  get(path) {
    return this.request("GET", path);
  }

  // The paths the API documents, to offer actions (retry, resolve) only where the API has them.
  async routes() {
    const response = await fetch(this.baseUrl + "/v1/openapi.json");
    if (!response.ok) return new Set();
    return new Set(Object.keys((await response.json()).paths || {}));
  }

  // PUT to a (presigned) upload URL with the headers it was signed for, reporting progress as the bytes leave; fetch
  // cannot report upload progress, XMLHttpRequest can.
  upload(target, file, onProgress) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open(target.method || "PUT", target.url);
      for (const [name, value] of Object.entries(target.headers || {})) xhr.setRequestHeader(name, value);
      xhr.upload.onprogress = (event) => {
        if (event.lengthComputable) onProgress(event.loaded, event.total);
      };
      xhr.onload = () =>
        xhr.status >= 200 && xhr.status < 300
          ? resolve()
          : reject(new Error(`the upload was refused (${xhr.status}): ${xhr.responseText.slice(0, 300)}`));
      xhr.onerror = () => reject(new Error("the upload did not reach the server"));
      xhr.send(file);
    });
  }
}
