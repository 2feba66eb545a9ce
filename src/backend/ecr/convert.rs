//! Conversions between domain types and aws-sdk-ecr types. The only file that touches
//! `aws_sdk_ecr::types`.

use std::collections::BTreeMap;
use std::time::SystemTime;

use aws_sdk_ecr::types::{
    EncryptionConfiguration, EncryptionType, ImageScanningConfiguration, ImageTagMutability,
    ImageTagMutabilityExclusionFilter, ImageTagMutabilityExclusionFilterType, RegistryScanningConfiguration,
    RegistryScanningRule, Repository, ScanFrequency, ScanType, ScanningRepositoryFilter,
    ScanningRepositoryFilterType, Tag,
};

use crate::backend::{
    BackendError, BackendResult, EncryptionSettings, Mutability, NewRepository, RemoteRepository,
    ReplicationRuleSettings, ScanningRuleSettings, ScanningSettings,
};

fn build_err(e: impl std::fmt::Display) -> BackendError {
    BackendError::Rejected(format!("invalid request: {e}"))
}

pub fn repository(r: &Repository) -> BackendResult<RemoteRepository> {
    let missing = |f: &str| BackendError::Unavailable(format!("ECR returned a repository without {f}"));
    let mutability = match r.image_tag_mutability() {
        Some(ImageTagMutability::Immutable) => Mutability::Immutable,
        Some(ImageTagMutability::ImmutableWithExclusion) => Mutability::ImmutableWithExclusion,
        Some(ImageTagMutability::MutableWithExclusion) => Mutability::MutableWithExclusion,
        _ => Mutability::Mutable,
    };
    let mut exclusion_filters: Vec<String> = r
        .image_tag_mutability_exclusion_filters()
        .iter()
        .map(|f| f.filter().to_owned())
        .collect();
    exclusion_filters.sort();
    let encryption = r.encryption_configuration().map_or_else(
        || EncryptionSettings {
            encryption_type: "AES256".into(),
            kms_key: None,
        },
        |e| EncryptionSettings {
            encryption_type: e.encryption_type().as_str().to_owned(),
            kms_key: e.kms_key().map(str::to_owned),
        },
    );
    Ok(RemoteRepository {
        name: r.repository_name().ok_or_else(|| missing("a name"))?.to_owned(),
        arn: r.repository_arn().ok_or_else(|| missing("an ARN"))?.to_owned(),
        uri: r.repository_uri().ok_or_else(|| missing("a URI"))?.to_owned(),
        registry_id: r.registry_id().unwrap_or_default().to_owned(),
        created_at: r.created_at().and_then(|t| SystemTime::try_from(*t).ok()),
        mutability,
        exclusion_filters,
        scan_on_push: r.image_scanning_configuration().is_some_and(|s| s.scan_on_push()),
        encryption,
    })
}

pub struct CreateRequest {
    pub name: String,
    pub mutability: ImageTagMutability,
    pub exclusion_filters: Option<Vec<ImageTagMutabilityExclusionFilter>>,
    pub scanning: ImageScanningConfiguration,
    pub encryption: Option<EncryptionConfiguration>,
    pub tags: Vec<Tag>,
}

pub fn create_request(repo: &NewRepository) -> BackendResult<CreateRequest> {
    let (mutability, exclusion_filters) = mutability(repo.mutability, &repo.exclusion_filters)?;
    let encryption = repo
        .encryption
        .as_ref()
        .map(|e| {
            EncryptionConfiguration::builder()
                .encryption_type(EncryptionType::from(e.encryption_type.as_str()))
                .set_kms_key(e.kms_key.clone())
                .build()
                .map_err(build_err)
        })
        .transpose()?;
    Ok(CreateRequest {
        name: repo.name.clone(),
        mutability,
        exclusion_filters,
        scanning: scanning(repo.scan_on_push),
        encryption,
        tags: tags(&repo.tags)?,
    })
}

pub fn mutability(
    m: Mutability,
    filters: &[String],
) -> BackendResult<(ImageTagMutability, Option<Vec<ImageTagMutabilityExclusionFilter>>)> {
    let value = match m {
        Mutability::Mutable => ImageTagMutability::Mutable,
        Mutability::Immutable => ImageTagMutability::Immutable,
        Mutability::MutableWithExclusion => ImageTagMutability::MutableWithExclusion,
        Mutability::ImmutableWithExclusion => ImageTagMutability::ImmutableWithExclusion,
    };
    let with_filters = matches!(
        m,
        Mutability::MutableWithExclusion | Mutability::ImmutableWithExclusion
    );
    let filters = with_filters
        .then(|| {
            filters
                .iter()
                .map(|f| {
                    ImageTagMutabilityExclusionFilter::builder()
                        .filter_type(ImageTagMutabilityExclusionFilterType::Wildcard)
                        .filter(f)
                        .build()
                        .map_err(build_err)
                })
                .collect::<BackendResult<Vec<_>>>()
        })
        .transpose()?;
    Ok((value, filters))
}

pub fn scanning(scan_on_push: bool) -> ImageScanningConfiguration {
    ImageScanningConfiguration::builder()
        .scan_on_push(scan_on_push)
        .build()
}

pub fn tags(tags: &BTreeMap<String, String>) -> BackendResult<Vec<Tag>> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build().map_err(build_err))
        .collect()
}

pub fn scanning_settings(c: &RegistryScanningConfiguration) -> ScanningSettings {
    let mut rules: Vec<ScanningRuleSettings> = c
        .rules()
        .iter()
        .map(|r| {
            let mut filters: Vec<String> = r
                .repository_filters()
                .iter()
                .map(|f| f.filter().to_owned())
                .collect();
            filters.sort();
            ScanningRuleSettings {
                frequency: r.scan_frequency().as_str().to_owned(),
                filters,
            }
        })
        .collect();
    rules.sort_by(|a, b| a.frequency.cmp(&b.frequency));
    ScanningSettings {
        scan_type: c.scan_type().map_or("BASIC", |t| t.as_str()).to_owned(),
        rules,
    }
}

pub fn scanning_request(s: &ScanningSettings) -> BackendResult<(ScanType, Vec<RegistryScanningRule>)> {
    let rules = s
        .rules
        .iter()
        .map(|r| {
            let filters = r
                .filters
                .iter()
                .map(|f| {
                    ScanningRepositoryFilter::builder()
                        .filter(f)
                        .filter_type(ScanningRepositoryFilterType::Wildcard)
                        .build()
                        .map_err(build_err)
                })
                .collect::<BackendResult<Vec<_>>>()?;
            RegistryScanningRule::builder()
                .scan_frequency(ScanFrequency::from(r.frequency.as_str()))
                .set_repository_filters(Some(filters))
                .build()
                .map_err(build_err)
        })
        .collect::<BackendResult<Vec<_>>>()?;
    Ok((ScanType::from(s.scan_type.as_str()), rules))
}

pub fn replication_rules(c: &aws_sdk_ecr::types::ReplicationConfiguration) -> Vec<ReplicationRuleSettings> {
    c.rules()
        .iter()
        .map(|r| ReplicationRuleSettings {
            destinations: r
                .destinations()
                .iter()
                .map(|d| (d.region().to_owned(), d.registry_id().to_owned()))
                .collect(),
            filters: r
                .repository_filters()
                .iter()
                .map(|f| f.filter().to_owned())
                .collect(),
        })
        .collect()
}

pub fn replication_configuration(
    rules: &[ReplicationRuleSettings],
) -> BackendResult<aws_sdk_ecr::types::ReplicationConfiguration> {
    use aws_sdk_ecr::types::{
        ReplicationConfiguration, ReplicationDestination, ReplicationRule, RepositoryFilter,
        RepositoryFilterType,
    };
    let rules = rules
        .iter()
        .map(|r| {
            let destinations = r
                .destinations
                .iter()
                .map(|(region, id)| {
                    ReplicationDestination::builder()
                        .region(region)
                        .registry_id(id)
                        .build()
                        .map_err(build_err)
                })
                .collect::<BackendResult<Vec<_>>>()?;
            let filters = r
                .filters
                .iter()
                .map(|f| {
                    RepositoryFilter::builder()
                        .filter(f)
                        .filter_type(RepositoryFilterType::PrefixMatch)
                        .build()
                        .map_err(build_err)
                })
                .collect::<BackendResult<Vec<_>>>()?;
            let mut b = ReplicationRule::builder().set_destinations(Some(destinations));
            if !filters.is_empty() {
                b = b.set_repository_filters(Some(filters));
            }
            b.build().map_err(build_err)
        })
        .collect::<BackendResult<Vec<_>>>()?;
    ReplicationConfiguration::builder()
        .set_rules(Some(rules))
        .build()
        .map_err(build_err)
}

pub fn image(d: &aws_sdk_ecr::types::ImageDetail) -> crate::backend::ImageInfo {
    let time = |t: Option<&aws_sdk_ecr::primitives::DateTime>| t.and_then(|t| SystemTime::try_from(*t).ok());
    crate::backend::ImageInfo {
        digest: d.image_digest().unwrap_or_default().to_owned(),
        tags: d.image_tags().to_vec(),
        pushed_at: time(d.image_pushed_at()),
        last_pulled_at: time(d.last_recorded_pull_time()),
        archived: d.image_status().is_some_and(|s| s.as_str() == "ARCHIVED"),
        archived_at: time(d.last_archived_at()),
        last_activated_at: time(d.last_activated_at()),
        size_bytes: d.image_size_in_bytes().and_then(|b| u64::try_from(b).ok()),
        scan: (d.image_scan_status().is_some() || d.image_scan_findings_summary().is_some()).then(|| {
            let summary = d.image_scan_findings_summary();
            crate::backend::ImageScan {
                status: d
                    .image_scan_status()
                    .and_then(|s| s.status())
                    .map(|s| s.as_str().to_owned()),
                completed_at: time(summary.and_then(|s| s.image_scan_completed_at())),
                counts: summary
                    .and_then(|s| s.finding_severity_counts())
                    .map(|m| {
                        m.iter()
                            .map(|(k, v)| (k.as_str().to_owned(), i64::from(*v)))
                            .collect()
                    })
                    .unwrap_or_default(),
            }
        }),
    }
}
