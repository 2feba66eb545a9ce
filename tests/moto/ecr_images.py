"""moto extension for ecr-operator's tests: DescribeImages as ECR pages and sizes it, with each
image's scan status and findings summary.

moto 5.2.5's DescribeImages returns every image in one response (maxResults and nextToken are
ignored), reports `imageSizeInBytes` as the manifest's config size, and never includes
`imageScanStatus` or `imageScanFindingsSummary`. This module replaces it, in the request and
response shapes of the ECR API reference:

- maxResults (1 to 1000, default 100) and nextToken page the images in push order; a token that
  this endpoint did not issue is InvalidParameterException. imageIds still selects images.
- imageSizeInBytes is the sum of the manifest's layer sizes (what ECR reports for an image
  manifest: its compressed layers), or moto's own value for a manifest without layers.
- For an image moto has scanned (StartImageScan), imageScanStatus and imageScanFindingsSummary
  come from moto's DescribeImageScanFindings for that digest: its canned result (one HIGH
  finding), or the one set with moto's `/moto-api/static/ecr/scan-finding-results`. An image never
  scanned has neither, as ECR answers for an image without a scan.

Nothing here scans an image: findings are whatever moto is told.
"""

import json

from moto.core.responses import ActionResult
from moto.ecr.exceptions import InvalidParameterException
from moto.ecr.responses import ECRResponse


def _size(image):
    try:
        manifest = json.loads(image.image_manifest)
    except (TypeError, ValueError):
        return image.image_size_in_bytes
    layers = manifest.get("layers")
    if isinstance(layers, list) and layers:
        return sum(int(layer.get("size", 0)) for layer in layers)
    return image.image_size_in_bytes


def _scan(backend, repository, image):
    if not getattr(image, "last_scan", None):
        return {}
    result = backend.describe_image_scan_findings(
        image.registry_id, repository, {"imageDigest": image.image_digest}
    )
    findings = result.get("imageScanFindings", {})
    summary = {"findingSeverityCounts": findings.get("findingSeverityCounts", {})}
    for key in ("imageScanCompletedAt", "vulnerabilitySourceUpdatedAt"):
        if findings.get(key):
            summary[key] = findings[key]
    return {
        "imageScanStatus": result.get("imageScanStatus", {"status": "COMPLETE"}),
        "imageScanFindingsSummary": summary,
    }


def _detail(backend, repository, image):
    detail = {
        "registryId": image.registry_id,
        "repositoryName": repository,
        "imageDigest": image.image_digest,
        "imageSizeInBytes": _size(image),
        "imagePushedAt": image.image_pushed_at,
    }
    if image.image_tags:
        detail["imageTags"] = list(image.image_tags)
    if image.image_manifest_media_type:
        detail["imageManifestMediaType"] = image.image_manifest_media_type
    detail.update(_scan(backend, repository, image))
    return detail


def _r_describe_images(self):
    repository = self._get_param("repositoryName")
    registry_id = self._get_param("registryId")
    image_ids = self._get_param("imageIds")
    max_results = self._get_param("maxResults") or 100
    token = self._get_param("nextToken")
    if not 1 <= int(max_results) <= 1000:
        raise InvalidParameterException(
            "Invalid parameter at 'maxResults' failed to satisfy constraint: 'Member must have value between 1 and 1000'"
        )
    images = list(self.ecr_backend.describe_images(repository, registry_id, image_ids))
    start = 0
    if token:
        if not token.startswith("page:") or not token[5:].isdigit():
            raise InvalidParameterException("Invalid parameter at 'nextToken': not a token this endpoint issued")
        start = int(token[5:])
    end = start + int(max_results)
    body = {"imageDetails": [_detail(self.ecr_backend, repository, i) for i in images[start:end]]}
    if end < len(images) and not image_ids:
        body["nextToken"] = f"page:{end}"
    return ActionResult(body)


def install():
    ECRResponse.describe_images = _r_describe_images
