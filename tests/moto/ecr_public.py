"""moto extension for ecr-operator's tests: Amazon ECR Public.

moto 5.2.5 has no ECR Public service at all. This module adds one, registered under the service
name `ecr-public` (SigV4 signing name `ecr-public`, JSON 1.1 protocol, target prefix
`SpencerFrontendService`), with the request and response shapes of the ECR Public API reference
(botocore's `ecr-public` model serializes them) and the operations the operator calls:

- CreateRepository, DescribeRepositories, DeleteRepository (RepositoryNotEmptyException without
  `force` while the repository holds an image), RepositoryAlreadyExistsException,
  RepositoryNotFoundException;
- PutRepositoryCatalogData / GetRepositoryCatalogData: description at most 1,024 characters,
  aboutText and usageText at most 25,600, at most 50 architectures and 50 operating systems of 1
  to 50 characters each, logoImageBlob at most 512,000 bytes (InvalidParameterException).
  Architectures and operating systems outside the Gallery's badges (ARM, ARM 64, x86, x86-64;
  Linux, Windows) are kept, as ECR Public documents. A logo is answered as `logoUrl`, never as
  bytes; the URL names the logo's SHA-256, so a different logo gives a different URL. A field
  left out of PutRepositoryCatalogData is left as it was (the logo included);
- SetRepositoryPolicy / GetRepositoryPolicy / DeleteRepositoryPolicy: JSON text of at most
  10,240 characters (InvalidParameterException otherwise), RepositoryPolicyNotFoundException;
- TagResource / UntagResource / ListTagsForResource on the repository ARN
  (`arn:aws:ecr-public::<account>:repository/<name>`): keys 1 to 128 characters, values at most
  256, at most 200 tags (TooManyTagsException), keys starting with `aws:` refused
  (InvalidTagParameterException);
- DescribeRegistries and GetRegistryCatalogData / PutRegistryCatalogData: one registry per
  account, whose default and primary alias is `moto` followed by the account's last eight digits
  (an alias cannot be chosen through the API), and a display name of at most 100 characters;
- GetAuthorizationToken: `AWS:<password>` base64-encoded, valid for 12 hours;
- PutImage: enough of a push to make a repository non-empty (the manifest is stored under its
  SHA-256 digest and an optional tag; no layer is checked), and DescribeImages.

Repository names follow ECR Public's pattern and 2 to 205 characters (InvalidParameterException).
ECR Public's API is served only in us-east-1: a request signed for another region is
UnsupportedCommandException, so a client that forgets the region fails here as it would on AWS.
"""

import base64
import hashlib
import json
import re
import sys
import types
from datetime import datetime, timedelta, timezone

from moto import backend_index
from moto.core.base_backend import BackendDict, BaseBackend
from moto.core.exceptions import ServiceException
from moto.core.responses import ActionResult, BaseResponse, EmptyResult

NAME = re.compile(r"^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$")
REGION = "us-east-1"
DESCRIPTION_MAX = 1024
TEXT_MAX = 25600
LIST_MAX = 50
ITEM_MAX = 50
LOGO_MAX = 512000
POLICY_MAX = 10240
TAGS_MAX = 200
DISPLAY_NAME_MAX = 100


class InvalidParameterException(ServiceException):
    code = "InvalidParameterException"


class InvalidTagParameterException(ServiceException):
    code = "InvalidTagParameterException"


class TooManyTagsException(ServiceException):
    code = "TooManyTagsException"


class RepositoryAlreadyExistsException(ServiceException):
    code = "RepositoryAlreadyExistsException"


class RepositoryNotFoundException(ServiceException):
    code = "RepositoryNotFoundException"


class RepositoryNotEmptyException(ServiceException):
    code = "RepositoryNotEmptyException"


class RepositoryPolicyNotFoundException(ServiceException):
    code = "RepositoryPolicyNotFoundException"


class UnsupportedCommandException(ServiceException):
    code = "UnsupportedCommandException"


def _check_name(name):
    if not isinstance(name, str) or not 2 <= len(name) <= 205 or not NAME.match(name):
        raise InvalidParameterException(
            f"Invalid parameter at 'repositoryName' failed to satisfy constraint: "
            f"'must satisfy regular expression '{NAME.pattern}' and length 2 to 205'"
        )


def _check_catalog(catalog):
    description = catalog.get("description")
    if description is not None and len(description) > DESCRIPTION_MAX:
        raise InvalidParameterException(
            f"Invalid parameter at 'catalogData.description': at most {DESCRIPTION_MAX} characters"
        )
    for key in ("aboutText", "usageText"):
        text = catalog.get(key)
        if text is not None and len(text) > TEXT_MAX:
            raise InvalidParameterException(
                f"Invalid parameter at 'catalogData.{key}': at most {TEXT_MAX} characters"
            )
    for key in ("architectures", "operatingSystems"):
        items = catalog.get(key)
        if items is None:
            continue
        if len(items) > LIST_MAX:
            raise InvalidParameterException(
                f"Invalid parameter at 'catalogData.{key}': at most {LIST_MAX} items"
            )
        for item in items:
            if not 1 <= len(item) <= ITEM_MAX:
                raise InvalidParameterException(
                    f"Invalid parameter at 'catalogData.{key}': each item 1 to {ITEM_MAX} characters"
                )
    logo = catalog.get("logoImageBlob")
    if logo is not None and len(logo) > LOGO_MAX:
        raise InvalidParameterException(
            f"Invalid parameter at 'catalogData.logoImageBlob': at most {LOGO_MAX} bytes"
        )


def _check_tags(tags):
    for tag in tags:
        key = tag.get("Key", "")
        value = tag.get("Value", "")
        if not 1 <= len(key) <= 128 or len(value) > 256:
            raise InvalidTagParameterException(
                "A tag key is 1 to 128 characters and a tag value at most 256"
            )
        if key.lower().startswith("aws:"):
            raise InvalidTagParameterException("Tag keys starting with 'aws:' are reserved")


class PublicRepository:
    def __init__(self, account_id, alias, name, catalog, tags):
        self.account_id = account_id
        self.name = name
        self.arn = f"arn:aws:ecr-public::{account_id}:repository/{name}"
        self.uri = f"public.ecr.aws/{alias}/{name}"
        self.created_at = datetime.now(timezone.utc)
        self.catalog = {}
        self.logo_sha = None
        self.policy = None
        self.tags = {}
        self.images = {}  # digest -> {"manifest", "tags", "pushedAt"}
        self.put_catalog(catalog or {})
        for tag in tags or []:
            self.tags[tag["Key"]] = tag.get("Value", "")

    def put_catalog(self, catalog):
        for key in ("description", "aboutText", "usageText", "architectures", "operatingSystems"):
            if key in catalog and catalog[key] is not None:
                self.catalog[key] = catalog[key]
        logo = catalog.get("logoImageBlob")
        if logo is not None:
            self.logo_sha = hashlib.sha256(logo).hexdigest() if logo else None

    def catalog_data(self):
        data = {k: v for k, v in self.catalog.items() if v not in ("", [])}
        if self.logo_sha:
            data["logoUrl"] = f"https://d2c6ynd0m7mqpv.cloudfront.net/logo/{self.logo_sha}.png"
        data["marketplaceCertified"] = False
        return data

    def to_dict(self):
        return {
            "repositoryArn": self.arn,
            "registryId": self.account_id,
            "repositoryName": self.name,
            "repositoryUri": self.uri,
            "createdAt": self.created_at,
        }


class ECRPublicBackend(BaseBackend):
    def __init__(self, region_name, account_id):
        super().__init__(region_name, account_id)
        self.repositories = {}
        self.alias = f"moto{account_id[-8:]}"
        self.display_name = ""

    def repository(self, name):
        _check_name(name)
        if name not in self.repositories:
            raise RepositoryNotFoundException(
                f"The repository with name '{name}' does not exist in the registry with id '{self.account_id}'"
            )
        return self.repositories[name]

    def by_arn(self, arn):
        prefix = f"arn:aws:ecr-public::{self.account_id}:repository/"
        if not isinstance(arn, str) or not arn.startswith(prefix):
            raise InvalidParameterException(f"Invalid parameter at 'resourceArn': '{arn}' is not a repository ARN")
        return self.repository(arn[len(prefix):])


ecrpublic_backends = BackendDict(ECRPublicBackend, "ecr-public")


class ECRPublicResponse(BaseResponse):
    def __init__(self):
        super().__init__(service_name="ecr-public")
        self.automated_parameter_parsing = True

    @property
    def backend(self):
        if self.region != REGION:
            raise UnsupportedCommandException(
                f"ECR Public is served only in {REGION}, not in {self.region}"
            )
        return ecrpublic_backends[self.current_account][REGION]

    def _registry(self):
        registry_id = self._get_param("registryId")
        backend = self.backend
        if registry_id is not None and registry_id != backend.account_id:
            raise InvalidParameterException(f"Invalid parameter at 'registryId': '{registry_id}'")
        return backend

    def create_repository(self):
        backend = self._registry()
        name = self._get_param("repositoryName")
        _check_name(name)
        catalog = self._get_param("catalogData") or {}
        _check_catalog(catalog)
        tags = self._get_param("tags") or []
        _check_tags(tags)
        if len(tags) > TAGS_MAX:
            raise TooManyTagsException(f"At most {TAGS_MAX} tags")
        if name in backend.repositories:
            raise RepositoryAlreadyExistsException(
                f"The repository with name '{name}' already exists in the registry with id '{backend.account_id}'"
            )
        repo = PublicRepository(backend.account_id, backend.alias, name, catalog, tags)
        backend.repositories[name] = repo
        return ActionResult({"repository": repo.to_dict(), "catalogData": repo.catalog_data()})

    def describe_repositories(self):
        backend = self._registry()
        names = self._get_param("repositoryNames")
        if names:
            repos = [backend.repository(n) for n in names]
        else:
            repos = [backend.repositories[n] for n in sorted(backend.repositories)]
        max_results = int(self._get_param("maxResults") or 1000)
        start = int(self._get_param("nextToken") or 0)
        page = repos[start : start + max_results]
        result = {"repositories": [r.to_dict() for r in page]}
        if start + max_results < len(repos):
            result["nextToken"] = str(start + max_results)
        return ActionResult(result)

    def delete_repository(self):
        backend = self._registry()
        repo = backend.repository(self._get_param("repositoryName"))
        if repo.images and not self._get_param("force"):
            raise RepositoryNotEmptyException(
                f"The repository with name '{repo.name}' in registry with id '{backend.account_id}' "
                "cannot be deleted because it still contains images"
            )
        del backend.repositories[repo.name]
        return ActionResult({"repository": repo.to_dict()})

    def put_repository_catalog_data(self):
        repo = self._registry().repository(self._get_param("repositoryName"))
        catalog = self._get_param("catalogData") or {}
        _check_catalog(catalog)
        repo.put_catalog(catalog)
        return ActionResult({"catalogData": repo.catalog_data()})

    def get_repository_catalog_data(self):
        repo = self._registry().repository(self._get_param("repositoryName"))
        return ActionResult({"catalogData": repo.catalog_data()})

    def set_repository_policy(self):
        backend = self._registry()
        repo = backend.repository(self._get_param("repositoryName"))
        text = self._get_param("policyText") or ""
        if len(text) > POLICY_MAX:
            raise InvalidParameterException(f"Invalid parameter at 'policyText': at most {POLICY_MAX} characters")
        try:
            doc = json.loads(text)
        except ValueError:
            raise InvalidParameterException("Invalid parameter at 'PolicyText' failed to satisfy constraint: 'Invalid repository policy provided'")
        if not isinstance(doc, dict) or "Statement" not in doc:
            raise InvalidParameterException("Invalid parameter at 'PolicyText' failed to satisfy constraint: 'Invalid repository policy provided'")
        repo.policy = text
        return ActionResult({"registryId": backend.account_id, "repositoryName": repo.name, "policyText": text})

    def get_repository_policy(self):
        backend = self._registry()
        repo = backend.repository(self._get_param("repositoryName"))
        if repo.policy is None:
            raise RepositoryPolicyNotFoundException(
                f"Repository policy does not exist for the repository with name '{repo.name}'"
            )
        return ActionResult({"registryId": backend.account_id, "repositoryName": repo.name, "policyText": repo.policy})

    def delete_repository_policy(self):
        backend = self._registry()
        repo = backend.repository(self._get_param("repositoryName"))
        if repo.policy is None:
            raise RepositoryPolicyNotFoundException(
                f"Repository policy does not exist for the repository with name '{repo.name}'"
            )
        text, repo.policy = repo.policy, None
        return ActionResult({"registryId": backend.account_id, "repositoryName": repo.name, "policyText": text})

    def tag_resource(self):
        repo = self.backend.by_arn(self._get_param("resourceArn"))
        tags = self._get_param("tags") or []
        _check_tags(tags)
        merged = dict(repo.tags)
        for tag in tags:
            merged[tag["Key"]] = tag.get("Value", "")
        if len(merged) > TAGS_MAX:
            raise TooManyTagsException(f"At most {TAGS_MAX} tags")
        repo.tags = merged
        return EmptyResult()

    def untag_resource(self):
        repo = self.backend.by_arn(self._get_param("resourceArn"))
        for key in self._get_param("tagKeys") or []:
            if key.lower().startswith("aws:"):
                raise InvalidTagParameterException("Tag keys starting with 'aws:' are reserved")
            repo.tags.pop(key, None)
        return EmptyResult()

    def list_tags_for_resource(self):
        repo = self.backend.by_arn(self._get_param("resourceArn"))
        return ActionResult({"tags": [{"Key": k, "Value": v} for k, v in sorted(repo.tags.items())]})

    def describe_registries(self):
        backend = self.backend
        registry = {
            "registryId": backend.account_id,
            "registryArn": f"arn:aws:ecr-public::{backend.account_id}:registry/{backend.account_id}",
            "registryUri": f"public.ecr.aws/{backend.alias}",
            "verified": False,
            "aliases": [
                {
                    "name": backend.alias,
                    "status": "ACTIVE",
                    "primaryRegistryAlias": True,
                    "defaultRegistryAlias": True,
                }
            ],
        }
        return ActionResult({"registries": [registry]})

    def get_registry_catalog_data(self):
        backend = self.backend
        return ActionResult({"registryCatalogData": {"displayName": backend.display_name}})

    def put_registry_catalog_data(self):
        backend = self.backend
        name = self._get_param("displayName")
        if name is not None:
            if len(name) > DISPLAY_NAME_MAX:
                raise InvalidParameterException(f"Invalid parameter at 'displayName': at most {DISPLAY_NAME_MAX} characters")
            backend.display_name = name
        return ActionResult({"registryCatalogData": {"displayName": backend.display_name}})

    def get_authorization_token(self):
        self.backend  # noqa: B018 (the region check)
        password = hashlib.sha256(f"{self.current_account}/{datetime.now(timezone.utc).isoformat()}".encode()).hexdigest()
        token = base64.b64encode(f"AWS:{password}".encode()).decode()
        expires = datetime.now(timezone.utc) + timedelta(hours=12)
        return ActionResult({"authorizationData": {"authorizationToken": token, "expiresAt": expires}})

    def put_image(self):
        backend = self._registry()
        repo = backend.repository(self._get_param("repositoryName"))
        manifest = self._get_param("imageManifest") or ""
        if not manifest:
            raise InvalidParameterException("Invalid parameter at 'imageManifest': empty")
        digest = "sha256:" + hashlib.sha256(manifest.encode()).hexdigest()
        tag = self._get_param("imageTag")
        image = repo.images.setdefault(digest, {"manifest": manifest, "tags": [], "pushedAt": datetime.now(timezone.utc)})
        if tag:
            for other in repo.images.values():
                if tag in other["tags"]:
                    other["tags"].remove(tag)
            image["tags"].append(tag)
        image_id = {"imageDigest": digest}
        if tag:
            image_id["imageTag"] = tag
        return ActionResult(
            {
                "image": {
                    "registryId": backend.account_id,
                    "repositoryName": repo.name,
                    "imageId": image_id,
                    "imageManifest": manifest,
                    "imageManifestMediaType": self._get_param("imageManifestMediaType"),
                }
            }
        )

    def describe_images(self):
        backend = self._registry()
        repo = backend.repository(self._get_param("repositoryName"))
        details = [
            {
                "registryId": backend.account_id,
                "repositoryName": repo.name,
                "imageDigest": digest,
                "imageTags": image["tags"],
                "imagePushedAt": image["pushedAt"],
                "imageSizeInBytes": len(image["manifest"]),
            }
            for digest, image in sorted(repo.images.items())
        ]
        return ActionResult({"imageDetails": details})


def install():
    """Registers the service with moto's server: a module `moto.ecrpublic` (where moto's
    get_backend("ecr-public") looks) and the URLs of its endpoint and signing name."""
    module = types.ModuleType("moto.ecrpublic")
    module.ecrpublic_backends = ecrpublic_backends
    sys.modules["moto.ecrpublic"] = module
    pattern = re.compile(r"https?://(api\.)?ecr-public\.(.+)\.amazonaws\.com")
    if not any(name == "ecr-public" for name, _ in backend_index.backend_url_patterns):
        backend_index.backend_url_patterns.insert(0, ("ecr-public", pattern))
    url_bases = [pattern.pattern]
    ECRPublicBackend.url_bases = url_bases

    def _flask_paths(self):
        return {"/": ECRPublicResponse.dispatch}

    ECRPublicBackend.flask_paths = property(_flask_paths)
