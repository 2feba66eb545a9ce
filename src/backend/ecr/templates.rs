//! Repository creation templates on the SDK.

use std::time::SystemTime;

use aws_sdk_ecr::types::{
    EncryptionConfigurationForRepositoryCreationTemplate, EncryptionType, ImageTagMutability, RctAppliedFor,
    RepositoryCreationTemplate,
};

use super::{EcrBackend, convert, deleted};
use crate::backend::{
    BackendError, BackendResult, EncryptionSettings, Mutability, RemoteTemplate, Target, TemplateSettings,
};

fn template(t: &RepositoryCreationTemplate, registry_id: &str) -> RemoteTemplate {
    let mut applied_for: Vec<String> = t.applied_for().iter().map(|a| a.as_str().to_owned()).collect();
    applied_for.sort();
    let mut exclusion_filters: Vec<String> = t
        .image_tag_mutability_exclusion_filters()
        .iter()
        .map(|f| f.filter().to_owned())
        .collect();
    exclusion_filters.sort();
    let mutability = t.image_tag_mutability().map(|m| match m {
        ImageTagMutability::Immutable => Mutability::Immutable,
        ImageTagMutability::ImmutableWithExclusion => Mutability::ImmutableWithExclusion,
        ImageTagMutability::MutableWithExclusion => Mutability::MutableWithExclusion,
        _ => Mutability::Mutable,
    });
    RemoteTemplate {
        settings: TemplateSettings {
            prefix: t.prefix().unwrap_or_default().to_owned(),
            applied_for,
            description: t.description().map(str::to_owned),
            mutability,
            exclusion_filters,
            encryption: t.encryption_configuration().map(|e| EncryptionSettings {
                encryption_type: e.encryption_type().as_str().to_owned(),
                kms_key: e.kms_key().map(str::to_owned),
            }),
            tags: t
                .resource_tags()
                .iter()
                .map(|t| (t.key().to_owned(), t.value().to_owned()))
                .collect(),
            custom_role_arn: t.custom_role_arn().map(str::to_owned),
            repository_policy: t.repository_policy().map(str::to_owned),
            lifecycle_policy: t.lifecycle_policy().map(str::to_owned),
        },
        registry_id: registry_id.to_owned(),
        created_at: t.created_at().and_then(|t| SystemTime::try_from(*t).ok()),
    }
}

/// The request's parts, built once.
struct Request {
    applied_for: Vec<RctAppliedFor>,
    mutability: Option<ImageTagMutability>,
    filters: Option<Vec<aws_sdk_ecr::types::ImageTagMutabilityExclusionFilter>>,
    encryption: Option<EncryptionConfigurationForRepositoryCreationTemplate>,
    tags: Vec<aws_sdk_ecr::types::Tag>,
}

fn request(t: &TemplateSettings) -> BackendResult<Request> {
    let (mutability, filters) = match t.mutability {
        Some(m) => {
            let (m, f) = convert::mutability(m, &t.exclusion_filters)?;
            (Some(m), f)
        }
        None => (None, None),
    };
    let encryption = t
        .encryption
        .as_ref()
        .map(|e| {
            EncryptionConfigurationForRepositoryCreationTemplate::builder()
                .encryption_type(EncryptionType::from(e.encryption_type.as_str()))
                .set_kms_key(e.kms_key.clone())
                .build()
                .map_err(|e| BackendError::Rejected(format!("invalid request: {e}")))
        })
        .transpose()?;
    Ok(Request {
        applied_for: t
            .applied_for
            .iter()
            .map(|a| RctAppliedFor::from(a.as_str()))
            .collect(),
        mutability,
        filters,
        encryption,
        tags: convert::tags(&t.tags)?,
    })
}

impl EcrBackend {
    pub(super) async fn describe_template_impl(
        &self,
        target: &Target,
        prefix: &str,
    ) -> BackendResult<Option<RemoteTemplate>> {
        let prefix = prefix.to_owned();
        let result = self
            .call(target, "DescribeRepositoryCreationTemplates", |c| async move {
                c.ecr
                    .describe_repository_creation_templates()
                    .prefixes(prefix)
                    .send()
                    .await
            })
            .await;
        match result {
            Ok(out) => Ok(out
                .repository_creation_templates()
                .first()
                .map(|t| template(t, out.registry_id().unwrap_or_default()))),
            Err(BackendError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub(super) async fn create_template_impl(
        &self,
        target: &Target,
        settings: &TemplateSettings,
    ) -> BackendResult<RemoteTemplate> {
        let (s, r) = (settings.clone(), request(settings)?);
        let out = self
            .call(target, "CreateRepositoryCreationTemplate", |c| async move {
                c.ecr
                    .create_repository_creation_template()
                    .prefix(s.prefix)
                    .set_applied_for(Some(r.applied_for))
                    .set_description(s.description)
                    .set_image_tag_mutability(r.mutability)
                    .set_image_tag_mutability_exclusion_filters(r.filters)
                    .set_encryption_configuration(r.encryption)
                    .set_resource_tags(Some(r.tags))
                    .set_custom_role_arn(s.custom_role_arn)
                    .set_repository_policy(s.repository_policy)
                    .set_lifecycle_policy(s.lifecycle_policy)
                    .send()
                    .await
            })
            .await?;
        let created = out.repository_creation_template().ok_or_else(|| {
            BackendError::Unavailable("CreateRepositoryCreationTemplate returned nothing".into())
        })?;
        Ok(template(created, out.registry_id().unwrap_or_default()))
    }

    pub(super) async fn update_template_impl(
        &self,
        target: &Target,
        settings: &TemplateSettings,
    ) -> BackendResult<()> {
        let (s, r) = (settings.clone(), request(settings)?);
        self.call(target, "UpdateRepositoryCreationTemplate", |c| async move {
            c.ecr
                .update_repository_creation_template()
                .prefix(s.prefix)
                .set_applied_for(Some(r.applied_for))
                .set_description(s.description)
                .set_image_tag_mutability(r.mutability)
                .set_image_tag_mutability_exclusion_filters(r.filters)
                .set_encryption_configuration(r.encryption)
                .set_resource_tags(Some(r.tags))
                .set_custom_role_arn(s.custom_role_arn)
                .set_repository_policy(s.repository_policy)
                .set_lifecycle_policy(s.lifecycle_policy)
                .send()
                .await
        })
        .await
        .map(drop)
    }

    pub(super) async fn delete_template_impl(&self, target: &Target, prefix: &str) -> BackendResult<bool> {
        let prefix = prefix.to_owned();
        let result = self
            .call(target, "DeleteRepositoryCreationTemplate", |c| async move {
                c.ecr
                    .delete_repository_creation_template()
                    .prefix(prefix)
                    .send()
                    .await
            })
            .await;
        deleted(result)
    }
}
