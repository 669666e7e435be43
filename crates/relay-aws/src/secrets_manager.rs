//! Secrets Manager as the relay's [`SecretSource`]: one `GetSecretValue` per stage
//! read. The caching is the application's (`relay_app::secret_cache`).

use async_trait::async_trait;
use aws_sdk_secretsmanager::error::DisplayErrorContext;
use relay_core::secret::{SecretError, SecretSource, VersionStage};
use secrecy::SecretString;

/// Secrets Manager itself: one `GetSecretValue` per stage read. The caching is
/// [`SecretCache`]'s.
#[derive(Debug)]
pub struct SecretsManagerSource {
    client: aws_sdk_secretsmanager::Client,
}

impl SecretsManagerSource {
    pub fn new(client: aws_sdk_secretsmanager::Client) -> Self {
        SecretsManagerSource { client }
    }
}

#[async_trait]
impl SecretSource for SecretsManagerSource {
    async fn read(
        &self,
        secret_id: &str,
        stage: VersionStage,
    ) -> Result<Option<SecretString>, SecretError> {
        let result = self
            .client
            .get_secret_value()
            .secret_id(secret_id)
            .version_stage(stage.label())
            .send()
            .await;
        let output = match result {
            Ok(output) => output,
            Err(error) => {
                let not_found = error
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception());
                // A secret that was never rotated has no AWSPREVIOUS version.
                if not_found && stage == VersionStage::Previous {
                    return Ok(None);
                }
                return Err(SecretError::Unreadable {
                    secret_id: secret_id.to_string(),
                    detail: DisplayErrorContext(&error).to_string(),
                });
            }
        };
        match output.secret_string {
            Some(value) => Ok(Some(SecretString::from(value))),
            None => Err(SecretError::Malformed {
                secret_id: secret_id.to_string(),
                detail: format!("its {} version has no SecretString", stage.label()),
            }),
        }
    }
}
