//! A registry's account settings, pull-time update exclusions and signing configuration on the SDK.

use aws_sdk_ecr::types::{
    SigningConfiguration, SigningRepositoryFilter, SigningRepositoryFilterType, SigningRule,
};

use super::EcrBackend;
use crate::backend::{BackendError, BackendResult, SigningRuleSettings, Target};

fn build_err(e: impl std::fmt::Display) -> BackendError {
    BackendError::Rejected(format!("invalid request: {e}"))
}

impl EcrBackend {
    pub(super) async fn get_account_setting_impl(
        &self,
        target: &Target,
        name: &str,
    ) -> BackendResult<String> {
        let name = name.to_owned();
        let out = self
            .call(target, "GetAccountSetting", |c| async move {
                c.ecr.get_account_setting().name(name).send().await
            })
            .await?;
        Ok(out.value().unwrap_or_default().to_owned())
    }

    pub(super) async fn put_account_setting_impl(
        &self,
        target: &Target,
        name: &str,
        value: &str,
    ) -> BackendResult<()> {
        let (name, value) = (name.to_owned(), value.to_owned());
        self.call(target, "PutAccountSetting", |c| async move {
            c.ecr.put_account_setting().name(name).value(value).send().await
        })
        .await
        .map(drop)
    }

    pub(super) async fn list_pull_time_exclusions_impl(&self, target: &Target) -> BackendResult<Vec<String>> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let next = token.clone();
            let page = self
                .call(target, "ListPullTimeUpdateExclusions", |c| async move {
                    c.ecr
                        .list_pull_time_update_exclusions()
                        .set_next_token(next)
                        .send()
                        .await
                })
                .await?;
            out.extend(page.pull_time_update_exclusions().iter().cloned());
            match page.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_owned()),
                _ => break,
            }
        }
        out.sort();
        Ok(out)
    }

    pub(super) async fn set_pull_time_exclusion_impl(
        &self,
        target: &Target,
        principal_arn: &str,
        register: bool,
    ) -> BackendResult<()> {
        let arn = principal_arn.to_owned();
        if register {
            self.call(target, "RegisterPullTimeUpdateExclusion", |c| async move {
                c.ecr
                    .register_pull_time_update_exclusion()
                    .principal_arn(arn)
                    .send()
                    .await
            })
            .await
            .map(drop)
        } else {
            self.call(target, "DeregisterPullTimeUpdateExclusion", |c| async move {
                c.ecr
                    .deregister_pull_time_update_exclusion()
                    .principal_arn(arn)
                    .send()
                    .await
            })
            .await
            .map(drop)
        }
    }

    pub(super) async fn get_signing_impl(
        &self,
        target: &Target,
    ) -> BackendResult<Option<Vec<SigningRuleSettings>>> {
        let result = self
            .call(target, "GetSigningConfiguration", |c| async move {
                c.ecr.get_signing_configuration().send().await
            })
            .await;
        let out = match result {
            Ok(out) => out,
            Err(BackendError::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        Ok(out.signing_configuration().map(|config| {
            config
                .rules()
                .iter()
                .map(|r| {
                    let mut filters: Vec<String> = r
                        .repository_filters()
                        .iter()
                        .map(|f| f.filter().to_owned())
                        .collect();
                    filters.sort();
                    SigningRuleSettings {
                        signing_profile_arn: r.signing_profile_arn().to_owned(),
                        filters,
                    }
                })
                .collect()
        }))
    }

    pub(super) async fn put_signing_impl(
        &self,
        target: &Target,
        rules: &[SigningRuleSettings],
    ) -> BackendResult<()> {
        let rules = rules
            .iter()
            .map(|r| {
                let filters = r
                    .filters
                    .iter()
                    .map(|f| {
                        SigningRepositoryFilter::builder()
                            .filter(f)
                            .filter_type(SigningRepositoryFilterType::WildcardMatch)
                            .build()
                            .map_err(build_err)
                    })
                    .collect::<BackendResult<Vec<_>>>()?;
                SigningRule::builder()
                    .signing_profile_arn(&r.signing_profile_arn)
                    .set_repository_filters(Some(filters))
                    .build()
                    .map_err(build_err)
            })
            .collect::<BackendResult<Vec<_>>>()?;
        let config = SigningConfiguration::builder()
            .set_rules(Some(rules))
            .build()
            .map_err(build_err)?;
        self.call(target, "PutSigningConfiguration", |c| async move {
            c.ecr
                .put_signing_configuration()
                .signing_configuration(config)
                .send()
                .await
        })
        .await
        .map(drop)
    }
}
