//! Image tags on the SDK: the protection tags of images in use (an existing manifest put again
//! under an extra tag, which IMMUTABLE repositories accept since the tag is new; a tag removed).

use aws_sdk_ecr::types::ImageIdentifier;

use super::EcrBackend;
use crate::backend::{BackendError, BackendResult, Target};

impl EcrBackend {
    pub(super) async fn tag_image_impl(
        &self,
        target: &Target,
        repo: &str,
        digest: &str,
        tag: &str,
    ) -> BackendResult<()> {
        let (r, d) = (repo.to_owned(), digest.to_owned());
        let got = self
            .call(target, "BatchGetImage", |c| async move {
                c.ecr
                    .batch_get_image()
                    .repository_name(r)
                    .image_ids(ImageIdentifier::builder().image_digest(d).build())
                    .accepted_media_types("application/vnd.docker.distribution.manifest.v2+json")
                    .accepted_media_types("application/vnd.docker.distribution.manifest.list.v2+json")
                    .accepted_media_types("application/vnd.oci.image.manifest.v1+json")
                    .accepted_media_types("application/vnd.oci.image.index.v1+json")
                    .accepted_media_types("application/vnd.docker.distribution.manifest.v1+json")
                    .send()
                    .await
            })
            .await?;
        let Some(image) = got.images().first() else {
            return Err(BackendError::NotFound(format!(
                "ImageNotFoundException: {repo}@{digest}"
            )));
        };
        let manifest = image.image_manifest().unwrap_or_default().to_owned();
        let media_type = image.image_manifest_media_type().map(str::to_owned);
        let (r, d, t) = (repo.to_owned(), digest.to_owned(), tag.to_owned());
        let put = self
            .call(target, "PutImage", |c| async move {
                c.ecr
                    .put_image()
                    .repository_name(r)
                    .image_manifest(manifest)
                    .set_image_manifest_media_type(media_type)
                    .image_digest(d)
                    .image_tag(t)
                    .send()
                    .await
            })
            .await;
        match put {
            // The tag already names this image: done.
            Err(BackendError::Rejected(m)) if m.contains("ImageAlreadyExistsException") => Ok(()),
            other => other.map(drop),
        }
    }

    pub(super) async fn untag_image_impl(
        &self,
        target: &Target,
        repo: &str,
        tag: &str,
    ) -> BackendResult<bool> {
        let (r, t) = (repo.to_owned(), tag.to_owned());
        let out = self
            .call(target, "BatchDeleteImage", |c| async move {
                c.ecr
                    .batch_delete_image()
                    .repository_name(r)
                    .image_ids(ImageIdentifier::builder().image_tag(t).build())
                    .send()
                    .await
            })
            .await?;
        if let Some(f) = out.failures().first() {
            let code = f
                .failure_code()
                .map(|c| c.as_str().to_owned())
                .unwrap_or_default();
            if code == "ImageNotFound" || code == "ImageTagDoesNotMatchDigest" {
                return Ok(false);
            }
            return Err(BackendError::Rejected(format!(
                "BatchDeleteImage {repo}:{tag}: {code}: {}",
                f.failure_reason().unwrap_or_default()
            )));
        }
        Ok(!out.image_ids().is_empty())
    }
}
