//! The client: one `reqwest::Client` with timeouts, the base URLs and the app's credentials injected, and one
//! method per TikTok call returning a typed answer or a classified [`TikTokError`].
//!
//! Success is `error.code == "ok"` and nothing else: TikTok answers some refusals with HTTP 200.

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use reqwest::{header, RequestBuilder, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::{de::DeserializeOwned, Deserialize};
use serde_json::{json, Value};

use super::{
    chunk::ChunkPlan,
    config::TikTokConfig,
    error::{
        classify_code, classify_status, BoxError, CodeClass, Endpoint, ErrorContext, TikTokError, UnknownCause,
        UploadedRange,
    },
    model::{
        ChunkAck, CreatorInfo, InitOutcome, PhotoPost, PublishStatus, RawInitData, RawStatusData, SecretUrl, UserInfo,
        UserInfoData, VideoContentType, VideoPostInfo, VideoSource, USER_INFO_FIELDS,
    },
    oauth::{authorize_url, RawTokenAnswer, TokenGrant},
};
use crate::clock::{Clock, SystemClock};

const LOG_ID_HEADER: &str = "x-tt-logid";
const JSON_UTF8: &str = "application/json; charset=UTF-8";
/// The largest answer read from TikTok. Its answers are a few KiB of JSON; anything beyond this is not TikTok's.
pub const MAX_ANSWER_BYTES: usize = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
#[error("the TikTok HTTP client could not be built")]
pub struct ClientBuildError(#[source] reqwest::Error);

/// `Debug` shows the configuration, whose only secret is wrapped.
#[derive(Clone)]
pub struct TikTokClient {
    http: reqwest::Client,
    config: Arc<TikTokConfig>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for TikTokClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TikTokClient")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// An answer that arrived, whatever its status.
struct Answer {
    status: StatusCode,
    header_log_id: Option<String>,
    content_range: Option<String>,
    body: Bytes,
}

#[derive(Deserialize)]
struct RawEnvelope {
    #[serde(default)]
    data: Option<Value>,
    #[serde(default)]
    error: Option<RawApiError>,
}

#[derive(Deserialize)]
struct RawApiError {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    log_id: Option<String>,
}

/// The OAuth endpoints' error shape: `{"error": "...", "error_description": "...", "log_id": "..."}`.
#[derive(Deserialize)]
struct RawOAuthError {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
    #[serde(default)]
    log_id: Option<String>,
}

impl TikTokClient {
    pub fn new(config: TikTokConfig) -> Result<Self, ClientBuildError> {
        Self::with_clock(config, Arc::new(SystemClock))
    }

    /// The clock stamps token expiries (`now + expires_in`).
    pub fn with_clock(config: TikTokConfig, clock: Arc<dyn Clock>) -> Result<Self, ClientBuildError> {
        let http = reqwest::Client::builder()
            .connect_timeout(config.timeouts.connect)
            // A redirect would carry the bearer token or the upload token somewhere unexpected; TikTok's API never
            // redirects, so a 3xx is an error.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(ClientBuildError)?;
        Ok(Self {
            http,
            config: Arc::new(config),
            clock,
        })
    }

    pub fn config(&self) -> &TikTokConfig {
        &self.config
    }

    /// The authorize redirect for a connect, asking for `scopes` (normally [`super::REQUIRED_SCOPES`]).
    pub fn authorize_url(
        &self,
        scopes: &[&str],
        state: &str,
        disable_auto_auth: bool,
    ) -> Result<url::Url, url::ParseError> {
        authorize_url(
            &self.config.auth_base_url,
            &self.config.client_key,
            &self.config.redirect_uri,
            scopes,
            state,
            disable_auto_auth,
        )
    }

    fn api_url(&self, path: &str) -> String {
        format!("{}{path}", self.config.api_base_url)
    }

    /// `POST /v2/oauth/token/` with `grant_type=authorization_code`.
    #[tracing::instrument(skip_all)]
    pub async fn exchange_code(&self, code: &str) -> Result<TokenGrant, TikTokError> {
        let form = [
            ("client_key", self.config.client_key.as_str()),
            ("client_secret", self.config.client_secret.expose_secret()),
            ("code", code),
            ("grant_type", "authorization_code"),
            ("redirect_uri", self.config.redirect_uri.as_str()),
        ];
        self.token_call(Endpoint::TokenExchange, &form).await
    }

    /// `POST /v2/oauth/token/` with `grant_type=refresh_token`. The refresh token rotates: the old one stops working
    /// once this succeeds, so the caller must persist the returned grant before anything else. An
    /// [`TikTokError::OutcomeUnknown`] here means the old token may already be spent.
    #[tracing::instrument(skip_all)]
    pub async fn refresh(&self, refresh_token: &SecretString) -> Result<TokenGrant, TikTokError> {
        let form = [
            ("client_key", self.config.client_key.as_str()),
            ("client_secret", self.config.client_secret.expose_secret()),
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.expose_secret()),
        ];
        self.token_call(Endpoint::TokenRefresh, &form).await
    }

    async fn token_call(&self, endpoint: Endpoint, form: &[(&str, &str)]) -> Result<TokenGrant, TikTokError> {
        let request = self.http.post(self.api_url("/v2/oauth/token/")).form(form);
        let answer = self.send(endpoint, request, self.config.timeouts.request).await?;
        // The status of OAuth errors is undocumented: read the body first (reference §1.2).
        if let Some(error) = oauth_error(endpoint, &answer) {
            return Err(error);
        }
        if !answer.status.is_success() || envelope_refusal(&answer) {
            return Err(envelope_error(endpoint, &answer));
        }
        let context = answer.context(endpoint, None);
        let raw: RawTokenAnswer = serde_json::from_slice(&answer.body).map_err(|e| {
            let message = format!("unreadable token answer: {e}");
            server_failure(
                endpoint,
                "invalid_response",
                message,
                context.clone(),
                Some(Box::new(e)),
            )
        })?;
        TokenGrant::from_answer(raw, self.clock.now()).map_err(|incomplete| {
            server_failure(
                endpoint,
                "invalid_response",
                incomplete.to_string(),
                context,
                Some(Box::new(incomplete)),
            )
        })
    }

    /// `POST /v2/oauth/revoke/`: the app disappears from the user's connected apps.
    #[tracing::instrument(skip_all)]
    pub async fn revoke(&self, access_token: &SecretString) -> Result<(), TikTokError> {
        let endpoint = Endpoint::Revoke;
        let form = [
            ("client_key", self.config.client_key.as_str()),
            ("client_secret", self.config.client_secret.expose_secret()),
            ("token", access_token.expose_secret()),
        ];
        let request = self.http.post(self.api_url("/v2/oauth/revoke/")).form(&form);
        let answer = self.send(endpoint, request, self.config.timeouts.request).await?;
        if let Some(error) = oauth_error(endpoint, &answer) {
            return Err(error);
        }
        // Success is an empty object; a v2-style envelope with a code other than `ok` is a refusal.
        if answer.status.is_success() && !envelope_refusal(&answer) {
            Ok(())
        } else {
            Err(envelope_error(endpoint, &answer))
        }
    }

    /// `GET /v2/user/info/` with the `user.info.basic` fields.
    #[tracing::instrument(skip_all)]
    pub async fn user_info(&self, access_token: &SecretString) -> Result<UserInfo, TikTokError> {
        let request = self
            .http
            .get(self.api_url("/v2/user/info/"))
            .query(&[("fields", USER_INFO_FIELDS)])
            .bearer_auth(access_token.expose_secret());
        let (data, _) = self.api_call::<UserInfoData>(Endpoint::UserInfo, request).await?;
        Ok(data.user)
    }

    /// `POST /v2/post/publish/creator_info/query/`. A creator who cannot post now comes back as
    /// [`TikTokError::Permanent`] with a code from [`super::error::POSTING_BLOCKED_CODES`] (TikTok sends these with
    /// HTTP 200).
    #[tracing::instrument(skip_all)]
    pub async fn creator_info(&self, access_token: &SecretString) -> Result<CreatorInfo, TikTokError> {
        let request = self
            .http
            .post(self.api_url("/v2/post/publish/creator_info/query/"))
            .bearer_auth(access_token.expose_secret())
            .header(header::CONTENT_TYPE, JSON_UTF8);
        Ok(self.api_call(Endpoint::CreatorInfo, request).await?.0)
    }

    /// `POST /v2/post/publish/video/init/` (Direct Post).
    #[tracing::instrument(skip_all)]
    pub async fn init_video(
        &self,
        access_token: &SecretString,
        post_info: &VideoPostInfo,
        source: &VideoSource,
    ) -> Result<InitOutcome, TikTokError> {
        let body = json!({ "post_info": post_info.to_json(), "source_info": source.to_json() });
        self.init(
            Endpoint::VideoInit,
            "/v2/post/publish/video/init/",
            access_token,
            &body,
            source,
        )
        .await
    }

    /// `POST /v2/post/publish/inbox/video/init/`: a draft the creator finishes in the TikTok app. TikTok documents
    /// only `source_info` here; the user sets everything else in the app.
    #[tracing::instrument(skip_all)]
    pub async fn init_inbox_video(
        &self,
        access_token: &SecretString,
        source: &VideoSource,
    ) -> Result<InitOutcome, TikTokError> {
        let body = json!({ "source_info": source.to_json() });
        self.init(
            Endpoint::InboxVideoInit,
            "/v2/post/publish/inbox/video/init/",
            access_token,
            &body,
            source,
        )
        .await
    }

    /// `POST /v2/post/publish/content/init/` for a photo carousel.
    #[tracing::instrument(skip_all)]
    pub async fn init_photo(&self, access_token: &SecretString, post: &PhotoPost) -> Result<InitOutcome, TikTokError> {
        let endpoint = Endpoint::ContentInit;
        let request = self.json_post("/v2/post/publish/content/init/", access_token, &post.to_json());
        let (data, log_id) = self.api_call::<RawInitData>(endpoint, request).await?;
        let publish_id = data.publish_id.filter(|id| !id.is_empty());
        let publish_id = publish_id.ok_or_else(|| missing_field(endpoint, "publish_id", log_id.clone()))?;
        Ok(InitOutcome {
            publish_id,
            upload_url: None,
            log_id,
        })
    }

    async fn init(
        &self,
        endpoint: Endpoint,
        path: &str,
        access_token: &SecretString,
        body: &Value,
        source: &VideoSource,
    ) -> Result<InitOutcome, TikTokError> {
        let request = self.json_post(path, access_token, body);
        let (data, log_id) = self.api_call::<RawInitData>(endpoint, request).await?;
        // TikTok said `ok`, so the post exists; without its id nothing can follow it: the outcome is unknown.
        let publish_id = data.publish_id.filter(|id| !id.is_empty());
        let publish_id = publish_id.ok_or_else(|| missing_field(endpoint, "publish_id", log_id.clone()))?;
        let upload_url = match source {
            VideoSource::FileUpload(_) => {
                let url = data.upload_url.filter(|url| !url.is_empty());
                Some(SecretUrl::new(
                    url.ok_or_else(|| missing_field(endpoint, "upload_url", log_id.clone()))?,
                ))
            }
            VideoSource::PullFromUrl(_) => None,
        };
        Ok(InitOutcome {
            publish_id,
            upload_url,
            log_id,
        })
    }

    /// PUTs chunk `index` of `plan` to the upload URL. `bytes` must be exactly that chunk. A lost answer is
    /// [`TikTokError::Retryable`]: the chunk may be sent again, and a 416 then tells where TikTok stands.
    #[tracing::instrument(skip_all, fields(chunk = index))]
    pub async fn upload_chunk(
        &self,
        upload_url: &SecretUrl,
        plan: &ChunkPlan,
        index: u32,
        content_type: VideoContentType,
        bytes: Bytes,
    ) -> Result<ChunkAck, TikTokError> {
        let endpoint = Endpoint::UploadChunk;
        let local = |message: String| TikTokError::Permanent {
            code: "invalid_chunk".into(),
            message,
            context: ErrorContext {
                endpoint,
                http_status: None,
                log_id: None,
            },
        };
        let range = plan
            .chunk_range(index)
            .ok_or_else(|| local(format!("chunk {index} is outside the plan")))?;
        let expected = range.end - range.start;
        if bytes.len() as u64 != expected {
            return Err(local(format!(
                "chunk {index} must be {expected} bytes, got {}",
                bytes.len()
            )));
        }
        let target = url::Url::parse(upload_url.expose())
            .ok()
            .filter(|url| self.config.upload_hosts.allows(url));
        let Some(target) = target else {
            // The URL carries an upload token: only its host, if any, goes into the error.
            let host = url::Url::parse(upload_url.expose())
                .ok()
                .and_then(|url| url.host_str().map(str::to_owned))
                .unwrap_or_else(|| "an unreadable URL".into());
            return Err(TikTokError::Permanent {
                code: "untrusted_upload_url".into(),
                message: format!(
                    "the upload URL points at {host}, not one of TikTok's upload hosts ({})",
                    self.config.upload_hosts
                ),
                context: ErrorContext {
                    endpoint,
                    http_status: None,
                    log_id: None,
                },
            });
        };
        let request = self
            .http
            .put(target)
            .header(header::CONTENT_TYPE, content_type.as_str())
            .header(header::CONTENT_LENGTH, expected)
            .header(
                header::CONTENT_RANGE,
                format!("bytes {}-{}/{}", range.start, range.end - 1, plan.video_size),
            )
            .body(bytes);
        let answer = self.send(endpoint, request, self.config.timeouts.upload_chunk).await?;
        let uploaded = answer.content_range.as_deref().and_then(UploadedRange::parse);
        let context = answer.context(endpoint, None);
        match answer.status.as_u16() {
            201 | 200 => Ok(ChunkAck::Complete),
            206 => Ok(ChunkAck::Partial { uploaded }),
            403 | 404 => Err(TikTokError::UploadUrlExpired { context }),
            416 => Err(TikTokError::UploadRangeMismatch { uploaded, context }),
            status => {
                let code = format!("http_{status}");
                let message = String::from_utf8_lossy(&answer.body).chars().take(200).collect();
                Err(match classify_status(status) {
                    CodeClass::Retryable => TikTokError::Retryable {
                        code,
                        message,
                        context,
                        source: None,
                    },
                    CodeClass::RateLimited => TikTokError::RateLimited { message, context },
                    CodeClass::Reauthorize | CodeClass::Permanent => TikTokError::Permanent { code, message, context },
                })
            }
        }
    }

    /// `POST /v2/post/publish/status/fetch/`.
    #[tracing::instrument(skip_all)]
    pub async fn fetch_status(
        &self,
        access_token: &SecretString,
        publish_id: &str,
    ) -> Result<PublishStatus, TikTokError> {
        let endpoint = Endpoint::StatusFetch;
        let request = self.json_post(
            "/v2/post/publish/status/fetch/",
            access_token,
            &json!({ "publish_id": publish_id }),
        );
        let (data, log_id) = self.api_call::<RawStatusData>(endpoint, request).await?;
        data.into_status(log_id.clone())
            .ok_or_else(|| missing_field(endpoint, "status", log_id))
    }

    /// `POST /v2/post/publish/cancel/`: best effort, for a running pull.
    #[tracing::instrument(skip_all)]
    pub async fn cancel(&self, access_token: &SecretString, publish_id: &str) -> Result<(), TikTokError> {
        let request = self.json_post(
            "/v2/post/publish/cancel/",
            access_token,
            &json!({ "publish_id": publish_id }),
        );
        self.api_call::<Value>(Endpoint::Cancel, request).await.map(|_| ())
    }

    fn json_post(&self, path: &str, access_token: &SecretString, body: &Value) -> RequestBuilder {
        self.http
            .post(self.api_url(path))
            .bearer_auth(access_token.expose_secret())
            .header(header::CONTENT_TYPE, JSON_UTF8)
            .body(body.to_string())
    }

    /// A v2 call: success only with `error.code == "ok"`, then `data` as `T`. Returns the log id with it.
    async fn api_call<T: DeserializeOwned>(
        &self,
        endpoint: Endpoint,
        request: RequestBuilder,
    ) -> Result<(T, Option<String>), TikTokError> {
        let answer = self.send(endpoint, request, self.config.timeouts.request).await?;
        let envelope = serde_json::from_slice::<RawEnvelope>(&answer.body).ok();
        let error = envelope.as_ref().and_then(|e| e.error.as_ref());
        let is_ok = error.and_then(|e| e.code.as_deref()) == Some("ok");
        if !(is_ok && answer.status.is_success()) {
            return Err(envelope_error(endpoint, &answer));
        }
        let log_id = answer.log_id(error.and_then(|e| e.log_id.clone()));
        let data = envelope
            .and_then(|e| e.data)
            .unwrap_or(Value::Object(Default::default()));
        match serde_json::from_value::<T>(data) {
            Ok(data) => Ok((data, log_id)),
            Err(e) => {
                let context = ErrorContext {
                    endpoint,
                    http_status: Some(answer.status.as_u16()),
                    log_id,
                };
                Err(server_failure(
                    endpoint,
                    "invalid_response",
                    format!("unreadable data: {e}"),
                    context,
                    Some(Box::new(e)),
                ))
            }
        }
    }

    async fn send(
        &self,
        endpoint: Endpoint,
        request: RequestBuilder,
        timeout: Duration,
    ) -> Result<Answer, TikTokError> {
        let mut response = request
            .timeout(timeout)
            .send()
            .await
            .map_err(|e| transport_error(endpoint, e))?;
        let status = response.status();
        let header_text = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
                .filter(|v| !v.is_empty())
        };
        let header_log_id = header_text(LOG_ID_HEADER);
        let content_range = header_text(header::CONTENT_RANGE.as_str());
        let lost = |e: reqwest::Error| {
            let mut error = transport_error(endpoint, e);
            if let TikTokError::Retryable { context, .. } | TikTokError::OutcomeUnknown { context, .. } = &mut error {
                context.http_status = Some(status.as_u16());
                context.log_id.clone_from(&header_log_id);
            }
            error
        };
        let too_large = || {
            let context = ErrorContext {
                endpoint,
                http_status: Some(status.as_u16()),
                log_id: header_log_id.clone(),
            };
            let message = format!("TikTok's answer is larger than {MAX_ANSWER_BYTES} bytes; it was not read");
            server_failure(endpoint, "answer_too_large", message, context, None)
        };
        // Answers are small JSON documents; one that is not must not be buffered whole into memory.
        if response
            .content_length()
            .is_some_and(|length| length > MAX_ANSWER_BYTES as u64)
        {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(lost)? {
            if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        let body = Bytes::from(body);
        tracing::debug!(endpoint = %endpoint, status = status.as_u16(), log_id = header_log_id.as_deref(), "TikTok answered");
        Ok(Answer {
            status,
            header_log_id,
            content_range,
            body,
        })
    }
}

impl Answer {
    /// The body's log id when present, else the header's.
    fn log_id(&self, from_body: Option<String>) -> Option<String> {
        from_body
            .filter(|id| !id.is_empty())
            .or_else(|| self.header_log_id.clone())
    }

    fn context(&self, endpoint: Endpoint, body_log_id: Option<String>) -> ErrorContext {
        ErrorContext {
            endpoint,
            http_status: Some(self.status.as_u16()),
            log_id: self.log_id(body_log_id),
        }
    }
}

/// A failure before any answer: never connected (safe to repeat), or sent and then lost (unknown for calls with
/// effects). The URL is stripped from the source: upload URLs carry a token.
fn transport_error(endpoint: Endpoint, error: reqwest::Error) -> TikTokError {
    let context = ErrorContext {
        endpoint,
        http_status: None,
        log_id: None,
    };
    let (code, cause) = if error.is_connect() {
        ("connection", None)
    } else if error.is_timeout() {
        ("timeout", Some(UnknownCause::Timeout))
    } else {
        ("connection_lost", Some(UnknownCause::NoAnswer))
    };
    let message = match code {
        "connection" => "could not connect to TikTok",
        "timeout" => "TikTok did not answer in time",
        _ => "the connection to TikTok broke before the answer was complete",
    }
    .to_owned();
    let source: Option<BoxError> = Some(Box::new(error.without_url()));
    match cause {
        Some(cause) if endpoint.has_effects() => TikTokError::OutcomeUnknown {
            cause,
            code: code.into(),
            message,
            context,
            source,
        },
        _ => TikTokError::Retryable {
            code: code.into(),
            message,
            context,
            source,
        },
    }
}

/// A server-side failure: unknown outcome for calls with effects, retryable for the rest.
fn server_failure(
    endpoint: Endpoint,
    code: &str,
    message: String,
    context: ErrorContext,
    source: Option<BoxError>,
) -> TikTokError {
    if endpoint.has_effects() {
        TikTokError::OutcomeUnknown {
            cause: UnknownCause::ServerError,
            code: code.into(),
            message,
            context,
            source,
        }
    } else {
        TikTokError::Retryable {
            code: code.into(),
            message,
            context,
            source,
        }
    }
}

fn missing_field(endpoint: Endpoint, field: &str, log_id: Option<String>) -> TikTokError {
    let context = ErrorContext {
        endpoint,
        http_status: Some(200),
        log_id,
    };
    server_failure(
        endpoint,
        "invalid_response",
        format!("`ok` without `{field}`"),
        context,
        None,
    )
}

/// The error for an answer that is not a success: by TikTok's code when the body has one, else by HTTP status.
fn envelope_error(endpoint: Endpoint, answer: &Answer) -> TikTokError {
    let error = serde_json::from_slice::<RawEnvelope>(&answer.body)
        .ok()
        .and_then(|e| e.error);
    let (code, message, body_log_id) = match error {
        Some(RawApiError { code, message, log_id }) => (code.filter(|c| !c.is_empty() && c != "ok"), message, log_id),
        None => (None, None, None),
    };
    let context = answer.context(endpoint, body_log_id);
    let status = answer.status.as_u16();
    match code {
        Some(code) => from_code(endpoint, code, message.unwrap_or_default(), context),
        None if answer.status.is_success() => server_failure(
            endpoint,
            "invalid_response",
            "a success without a readable `ok` envelope".into(),
            context,
            None,
        ),
        None => {
            let message = message.unwrap_or_else(|| String::from_utf8_lossy(&answer.body).chars().take(200).collect());
            from_class(
                endpoint,
                classify_status(status),
                format!("http_{status}"),
                message,
                context,
            )
        }
    }
}

fn from_code(endpoint: Endpoint, code: String, message: String, context: ErrorContext) -> TikTokError {
    from_class(endpoint, classify_code(&code), code, message, context)
}

fn from_class(
    endpoint: Endpoint,
    class: CodeClass,
    code: String,
    message: String,
    context: ErrorContext,
) -> TikTokError {
    match class {
        CodeClass::Retryable => server_failure(endpoint, &code, message, context, None),
        CodeClass::RateLimited => TikTokError::RateLimited { message, context },
        CodeClass::Reauthorize => TikTokError::Reauthorize { code, message, context },
        CodeClass::Permanent => TikTokError::Permanent { code, message, context },
    }
}

/// Whether the body is a v2 envelope whose code is not `ok`.
fn envelope_refusal(answer: &Answer) -> bool {
    let envelope = serde_json::from_slice::<RawEnvelope>(&answer.body).ok();
    let code = envelope.and_then(|e| e.error).and_then(|e| e.code);
    code.is_some_and(|code| code != "ok")
}

/// The OAuth error shape, which token and revoke calls may use with any HTTP status.
fn oauth_error(endpoint: Endpoint, answer: &Answer) -> Option<TikTokError> {
    let error = serde_json::from_slice::<RawOAuthError>(&answer.body)
        .ok()
        .filter(|e| !e.error.is_empty())?;
    let context = answer.context(endpoint, error.log_id);
    Some(from_code(
        endpoint,
        error.error,
        error.error_description.unwrap_or_default(),
        context,
    ))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::{
        io::{AsyncReadExt, AsyncWriteExt},
        net::TcpListener,
    };

    use super::*;
    use crate::tiktok::{config::UploadHosts, TikTokTimeouts};

    /// A loopback HTTP server answering every request with `answer`; counts the connections it accepts.
    async fn serve(answer: Vec<u8>) -> (String, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let base = format!("http://{}", listener.local_addr().expect("bound"));
        let connections = Arc::new(AtomicUsize::new(0));
        let counted = connections.clone();
        let answer = Arc::new(answer);
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                counted.fetch_add(1, Ordering::SeqCst);
                let answer = answer.clone();
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buffer = [0; 4096];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match socket.read(&mut buffer).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buffer[..n]),
                        }
                    }
                    // The client hangs up once it has seen enough; that is the point.
                    let _ = socket.write_all(&answer).await;
                });
            }
        });
        (base, connections)
    }

    fn client(base: &str, upload_hosts: UploadHosts) -> TikTokClient {
        TikTokClient::new(TikTokConfig {
            api_base_url: base.to_owned(),
            auth_base_url: base.to_owned(),
            client_key: "key".into(),
            client_secret: SecretString::from("secret"),
            redirect_uri: "https://app.example.com/callback".into(),
            app_audited: true,
            timeouts: TikTokTimeouts {
                connect: Duration::from_secs(2),
                request: Duration::from_secs(5),
                upload_chunk: Duration::from_secs(5),
            },
            upload_hosts,
        })
        .expect("builds")
    }

    fn oversized_json() -> Vec<u8> {
        let mut body = br#"{"data":{},"error":{"code":"ok","message":""#.to_vec();
        body.resize(MAX_ANSWER_BYTES + 1024, b'x');
        body.extend_from_slice(br#""}}"#);
        body
    }

    #[tokio::test]
    async fn attack_tiktok_answer_larger_than_1_mib_is_refused_unread() {
        let body = oversized_json();
        let mut declared = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        declared.extend_from_slice(&body);
        // Without a length the cap must hold while reading, chunk by chunk.
        let mut streamed =
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
        for piece in body.chunks(64 * 1024) {
            streamed.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
            streamed.extend_from_slice(piece);
            streamed.extend_from_slice(b"\r\n");
        }
        streamed.extend_from_slice(b"0\r\n\r\n");

        for answer in [declared, streamed] {
            let (base, _) = serve(answer).await;
            let error = client(&base, UploadHosts::tiktok())
                .creator_info(&SecretString::from("token"))
                .await
                .expect_err("too large");
            assert_eq!(error.code(), "answer_too_large", "{error:?}");
        }
    }

    #[tokio::test]
    async fn an_answer_just_under_the_cap_is_read() {
        let mut body = br#"{"data":{},"error":{"code":"ok","message":""#.to_vec();
        body.resize(MAX_ANSWER_BYTES - 16, b'x');
        body.extend_from_slice(br#""}}"#);
        let mut answer = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", body.len()).into_bytes();
        answer.extend_from_slice(&body);
        let (base, _) = serve(answer).await;
        let result = client(&base, UploadHosts::tiktok())
            .cancel(&SecretString::from("token"), "p")
            .await;
        assert!(result.is_ok(), "{result:?}");
    }

    #[tokio::test]
    async fn attack_upload_url_on_a_foreign_host_gets_no_chunk() {
        let (base, connections) = serve(b"HTTP/1.1 201 Created\r\ncontent-length: 0\r\n\r\n".to_vec()).await;
        let tiktok_only = client(&base, UploadHosts::tiktok());
        let plan = ChunkPlan::for_size(1024).expect("a plan");
        for forged in [
            format!("{base}/video/?upload_id=1&upload_token=tok-secret"),
            "https://attacker.example/video/?upload_token=tok-secret".to_owned(),
            "https://open-upload.tiktokapis.com.attacker.example/video/?upload_token=tok-secret".to_owned(),
            "not a url tok-secret".to_owned(),
        ] {
            let error = tiktok_only
                .upload_chunk(
                    &SecretUrl::new(forged),
                    &plan,
                    0,
                    VideoContentType::Mp4,
                    Bytes::from(vec![0; 1024]),
                )
                .await
                .expect_err("refused");
            assert_eq!(error.code(), "untrusted_upload_url");
            assert!(!format!("{error} {error:?}").contains("tok-secret"), "{error:?}");
        }
        assert_eq!(connections.load(Ordering::SeqCst), 0, "no byte left for a foreign host");

        // The same URL is fine once its host is listed (the sandbox's case).
        let listed = client(&base, UploadHosts::host_of(&base).expect("a host"));
        let ack = listed
            .upload_chunk(
                &SecretUrl::new(format!("{base}/video/?upload_id=1")),
                &plan,
                0,
                VideoContentType::Mp4,
                Bytes::from(vec![0; 1024]),
            )
            .await
            .expect("uploaded");
        assert_eq!(ack, ChunkAck::Complete);
    }
}
