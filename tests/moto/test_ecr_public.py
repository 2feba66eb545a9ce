"""Tests of the ECR Public extension (ecr_public.py) through boto3, against moto's server with the
extension installed exactly as server.py installs it: what ECR Public serves and what it refuses.

Run with moto's python: `$(tests/moto/install.sh) -m unittest tests/moto/test_ecr_public.py`
(tests/e2e/public.rs runs it as part of the end-to-end suite).
"""

import base64
import json
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import boto3  # noqa: E402
from botocore.config import Config  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402
from moto.server import ThreadedMotoServer  # noqa: E402

import ecr_public  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


class EcrPublicTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        ecr_public.install()
        cls.server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        cls.server.start()
        host, port = cls.server.get_host_and_port()
        cls.url = f"http://{host}:{port}"

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def client(self, region="us-east-1"):
        return boto3.client(
            "ecr-public",
            region_name=region,
            endpoint_url=self.url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(retries={"max_attempts": 1}, parameter_validation=False),
        )

    def refused(self, code, call, **kwargs):
        with self.assertRaises(ClientError) as caught:
            call(**kwargs)
        self.assertEqual(caught.exception.response["Error"]["Code"], code, caught.exception)
        return caught.exception

    def test_repository_life_cycle(self):
        ecr = self.client()
        created = ecr.create_repository(
            repositoryName="team/web",
            catalogData={"description": "web", "architectures": ["ARM 64", "x86-64"], "operatingSystems": ["Linux"]},
            tags=[{"Key": "team", "Value": "a"}],
        )
        repo = created["repository"]
        registry = ecr.describe_registries()["registries"][0]
        alias = registry["aliases"][0]["name"]
        self.assertTrue(registry["aliases"][0]["primaryRegistryAlias"])
        self.assertEqual(repo["repositoryUri"], f"public.ecr.aws/{alias}/team/web")
        self.assertEqual(repo["repositoryArn"], f"arn:aws:ecr-public::{repo['registryId']}:repository/team/web")
        self.assertEqual(created["catalogData"]["architectures"], ["ARM 64", "x86-64"])
        self.refused("RepositoryAlreadyExistsException", ecr.create_repository, repositoryName="team/web")

        listed = ecr.describe_repositories(repositoryNames=["team/web"])["repositories"]
        self.assertEqual([r["repositoryName"] for r in listed], ["team/web"])
        self.refused("RepositoryNotFoundException", ecr.describe_repositories, repositoryNames=["absent"])

        # Catalog data: a field left out is kept; a logo comes back as a URL naming its hash.
        ecr.put_repository_catalog_data(repositoryName="team/web", catalogData={"aboutText": "# About", "logoImageBlob": PNG})
        catalog = ecr.get_repository_catalog_data(repositoryName="team/web")["catalogData"]
        self.assertEqual(catalog["description"], "web")
        self.assertEqual(catalog["aboutText"], "# About")
        self.assertIn("logoUrl", catalog)
        ecr.put_repository_catalog_data(repositoryName="team/web", catalogData={"logoImageBlob": PNG + b"x"})
        self.assertNotEqual(ecr.get_repository_catalog_data(repositoryName="team/web")["catalogData"]["logoUrl"], catalog["logoUrl"])

        # Policy.
        self.refused("RepositoryPolicyNotFoundException", ecr.get_repository_policy, repositoryName="team/web")
        policy = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "ecr-public:BatchCheckLayerAvailability"}]})
        ecr.set_repository_policy(repositoryName="team/web", policyText=policy)
        self.assertEqual(json.loads(ecr.get_repository_policy(repositoryName="team/web")["policyText"]), json.loads(policy))
        ecr.delete_repository_policy(repositoryName="team/web")
        self.refused("RepositoryPolicyNotFoundException", ecr.delete_repository_policy, repositoryName="team/web")

        # Tags.
        arn = repo["repositoryArn"]
        ecr.tag_resource(resourceArn=arn, tags=[{"Key": "env", "Value": "prod"}])
        ecr.untag_resource(resourceArn=arn, tagKeys=["team"])
        self.assertEqual(ecr.list_tags_for_resource(resourceArn=arn)["tags"], [{"Key": "env", "Value": "prod"}])

        # Deletion: refused while an image is there, unless forced.
        ecr.put_image(repositoryName="team/web", imageManifest='{"schemaVersion":2}', imageTag="v1")
        self.assertEqual(len(ecr.describe_images(repositoryName="team/web")["imageDetails"]), 1)
        self.refused("RepositoryNotEmptyException", ecr.delete_repository, repositoryName="team/web")
        ecr.delete_repository(repositoryName="team/web", force=True)
        self.refused("RepositoryNotFoundException", ecr.delete_repository, repositoryName="team/web")

    def test_refuses_what_ecr_public_refuses(self):
        ecr = self.client()
        for name in ("Upper", "a", "trailing/", "double//slash", "-lead", "x" * 206):
            self.refused("InvalidParameterException", ecr.create_repository, repositoryName=name)
        for catalog in (
            {"description": "d" * 1025},
            {"aboutText": "a" * 25601},
            {"usageText": "u" * 25601},
            {"architectures": ["a"] * 51},
            {"operatingSystems": ["o" * 51]},
            {"logoImageBlob": b"\x00" * 512001},
        ):
            self.refused("InvalidParameterException", ecr.create_repository, repositoryName="limits", catalogData=catalog)
        # At the limits it is accepted, and an architecture outside the Gallery's badges is kept.
        ecr.create_repository(
            repositoryName="limits",
            catalogData={"description": "d" * 1024, "aboutText": "a" * 25600, "architectures": ["RISC-V"], "logoImageBlob": b"\x00" * 512000},
        )
        self.assertEqual(ecr.get_repository_catalog_data(repositoryName="limits")["catalogData"]["architectures"], ["RISC-V"])
        arn = ecr.describe_repositories(repositoryNames=["limits"])["repositories"][0]["repositoryArn"]
        self.refused("InvalidTagParameterException", ecr.tag_resource, resourceArn=arn, tags=[{"Key": "aws:x", "Value": "y"}])
        self.refused("InvalidTagParameterException", ecr.tag_resource, resourceArn=arn, tags=[{"Key": "k" * 129, "Value": "y"}])
        self.refused("TooManyTagsException", ecr.tag_resource, resourceArn=arn, tags=[{"Key": f"k{i}", "Value": "v"} for i in range(201)])
        self.refused("InvalidParameterException", ecr.set_repository_policy, repositoryName="limits", policyText="not json")
        self.refused("InvalidParameterException", ecr.tag_resource, resourceArn="arn:aws:ecr:us-east-1:123456789012:repository/limits", tags=[])
        ecr.delete_repository(repositoryName="limits")
        # Only us-east-1 serves ECR Public.
        self.refused("UnsupportedCommandException", self.client("eu-west-1").describe_registries)

    def test_registry_and_token(self):
        ecr = self.client()
        self.assertEqual(ecr.get_registry_catalog_data()["registryCatalogData"]["displayName"], "")
        ecr.put_registry_catalog_data(displayName="Example Corp")
        self.assertEqual(ecr.get_registry_catalog_data()["registryCatalogData"]["displayName"], "Example Corp")
        self.refused("InvalidParameterException", ecr.put_registry_catalog_data, displayName="n" * 101)
        data = ecr.get_authorization_token()["authorizationData"]
        user, password = base64.b64decode(data["authorizationToken"]).decode().split(":", 1)
        self.assertEqual(user, "AWS")
        self.assertTrue(password)
        self.assertIn("expiresAt", data)


if __name__ == "__main__":
    unittest.main()
