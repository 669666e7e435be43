//! `qdn token <dispatcher-id> [--ttl 12h]`: a dispatcher's HS256 JWT for `sms-outbound`.

use relay_core::auth::{JwtKeys, issue_token};
use relay_core::ports::DispatcherStore;
use secrecy::ExposeSecret;
use serde_json::json;

use crate::cli::TokenArgs;
use crate::context::{self, CommandResult, Done, Failure, Settings};
use crate::dispatchers::{lookup_id, no_such_dispatcher};
use crate::format::{MAX_TOKEN_TTL_SECS, duration, out, out_json, parse_duration, unix_now};

pub async fn run(settings: &Settings, args: TokenArgs) -> CommandResult {
    let ttl = parse_duration(&args.ttl).map_err(|e| Failure::usage(format!("--ttl: {e}")))?;
    if ttl > MAX_TOKEN_TTL_SECS {
        return Err(Failure::usage(format!(
            "--ttl: {} is longer than the {} a token may live",
            duration(ttl),
            duration(MAX_TOKEN_TTL_SECS)
        )));
    }
    let secret_id = settings.jwt_secret_id()?;
    let id = lookup_id(&args.dispatcher_id, settings)?;
    let aws = context::aws_config().await;
    // sms-outbound refuses tokens of dispatchers it does not know: so do we.
    let store = context::dispatcher_store(&aws, settings);
    if store.get(&id).await?.is_none() {
        return Err(no_such_dispatcher(&id, settings));
    }
    let secrets = context::secret_cache(&aws)?;
    let versions = secrets.get(secret_id).await?;
    // The same rule the function applies to the key (long enough for HS256).
    JwtKeys::from_versions(secret_id, &versions)?;
    let now = unix_now();
    let ttl = i64::try_from(ttl).map_err(|_| Failure::usage("--ttl: too long"))?;
    let token = issue_token(&id, &versions.current, now, ttl).map_err(Failure::aws)?;
    if settings.json {
        out_json(&json!({
            "token": token.expose_secret(),
            "sub": id.as_str(),
            "iat": now,
            "exp": now + ttl,
        }));
    } else {
        out(token.expose_secret());
    }
    Ok(Done::Ok)
}
