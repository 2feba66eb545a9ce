use super::*;
use crate::backend::ecr_public::RemotePublicCatalog;
use serde_json::json;

fn repo(spec: Value) -> PublicRepository {
    serde_json::from_value(json!({
        "apiVersion": "ecr-operator.dev/v1alpha1",
        "kind": "PublicRepository",
        "metadata": {"name": "web", "namespace": "oss", "generation": 3, "uid": "uid-1"},
        "spec": spec,
    }))
    .unwrap()
}

fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

const OWNER: &str = "c1/oss/web";
const PNG: &[u8] = b"\x89PNG\r\n\x1a\nrest-of-image";

fn full() -> Mode {
    Mode {
        observe_only: false,
        adoption: Adoption::AdoptOrCreate,
    }
}

fn catalog() -> PublicCatalog {
    PublicCatalog {
        description: "Web server".into(),
        about_text: "# About".into(),
        usage_text: String::new(),
        architectures: vec!["ARM 64".into(), "x86-64".into()],
        operating_systems: vec!["Linux".into()],
    }
}

fn spec() -> Value {
    json!({
        "catalogData": {"description": "Web server", "aboutText": "# About", "architectures": ["ARM 64", "x86-64"], "operatingSystems": ["Linux"]},
        "tags": {"team": "a"},
    })
}

fn in_sync(desired: &Desired) -> Observed {
    Observed {
        catalog: RemotePublicCatalog {
            catalog: desired.catalog.clone().unwrap_or_default(),
            logo_url: None,
        },
        tags: desired.tags.clone(),
        policy: None,
        created: false,
    }
}

fn remote() -> RemotePublicRepository {
    RemotePublicRepository {
        name: "web".into(),
        arn: "arn:aws:ecr-public::123456789012:repository/web".into(),
        uri: "public.ecr.aws/alias/web".into(),
        registry_id: "123456789012".into(),
        created_at: None,
    }
}

#[test]
fn desired_maps_the_catalog_in_ecr_public_spelling_and_adds_the_owner_tag() {
    let d = desired(&repo(spec()), "c1").unwrap();
    assert_eq!(d.name, "web", "defaults to metadata.name");
    assert_eq!(d.owner, OWNER);
    assert_eq!(d.catalog, Some(catalog()));
    assert_eq!(d.tags, tags(&[("team", "a"), (OWNER_TAG, OWNER)]));
    let d = desired(&repo(json!({"name": "project/web"})), "c1").unwrap();
    assert_eq!(d.name, "project/web");
    assert_eq!(d.catalog, None, "no catalogData: left alone");
}

#[test]
fn a_logo_must_be_a_png_or_jpeg_within_the_limit() {
    let ok = check_logo("ConfigMap oss/logo key logo.png", PNG.to_vec()).unwrap();
    assert_eq!(ok.sha256.len(), 64);
    assert!(check_logo("s", b"\xff\xd8\xff\xe0jpeg".to_vec()).is_ok(), "JPEG");
    for (bytes, expect) in [
        (b"<svg xmlns=...>".to_vec(), "is not a PNG or JPEG image"),
        (Vec::new(), "is not a PNG or JPEG image"),
        (
            [PNG, &vec![0u8; PUBLIC_LOGO_MAX_BYTES]].concat(),
            "takes at most 512000",
        ),
    ] {
        let e = check_logo("ConfigMap oss/logo key logo.png", bytes).unwrap_err();
        assert_eq!(e.reason(), "InvalidSpec");
        assert!(e.to_string().contains(expect), "{e}");
        assert!(e.to_string().contains("ConfigMap oss/logo key logo.png"), "{e}");
    }
}

#[test]
fn catalogs_compare_lists_as_sets_and_text_exactly() {
    let mut other = catalog();
    other.architectures.reverse();
    assert!(same_catalog(&catalog(), &other), "order of badges does not count");
    for change in [
        |c: &mut PublicCatalog| c.description.push('!'),
        |c: &mut PublicCatalog| c.about_text.clear(),
        |c: &mut PublicCatalog| c.usage_text = "docker pull".into(),
        |c: &mut PublicCatalog| c.architectures.push("ARM".into()),
        |c: &mut PublicCatalog| c.operating_systems.clear(),
    ] {
        let mut other = catalog();
        change(&mut other);
        assert!(!same_catalog(&catalog(), &other), "{other:?}");
    }
}

#[test]
fn plan_table() {
    let d = desired(&repo(spec()), "c1").unwrap();
    let logo = check_logo("s", PNG.to_vec()).unwrap();
    let sha = logo.sha256.clone();
    let with_url = |mut o: Observed| {
        o.catalog.logo_url = Some("https://logo".into());
        o
    };
    let drifted_catalog = |mut o: Observed| {
        o.catalog.catalog.description = "changed behind our back".into();
        o
    };
    let policy = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "ecr-public:*"}]});
    let with_policy = desired(&repo(json!({"policy": policy})), "c1").unwrap();
    #[allow(clippy::type_complexity)]
    let cases: Vec<(
        &str,
        &Desired,
        Observed,
        Option<&Logo>,
        Option<&str>,
        Vec<&str>,
        Vec<&'static str>,
    )> = vec![
        ("in sync", &d, in_sync(&d), None, None, vec![], vec![]),
        (
            "catalog drift",
            &d,
            drifted_catalog(in_sync(&d)),
            None,
            None,
            vec![],
            vec!["ecr-public:PutRepositoryCatalogData"],
        ),
        (
            "logo sent and shown",
            &d,
            with_url(in_sync(&d)),
            Some(&logo),
            Some(&sha),
            vec![],
            vec![],
        ),
        (
            "logo not shown",
            &d,
            in_sync(&d),
            Some(&logo),
            Some(&sha),
            vec![],
            vec!["ecr-public:PutRepositoryCatalogData"],
        ),
        (
            "logo changed",
            &d,
            with_url(in_sync(&d)),
            Some(&logo),
            Some("0000"),
            vec![],
            vec!["ecr-public:PutRepositoryCatalogData"],
        ),
        (
            "a removed key this operator set",
            &d,
            in_sync(&d),
            None,
            None,
            vec!["gone"],
            vec![],
        ),
        (
            "policy missing",
            &with_policy,
            in_sync(&with_policy),
            None,
            None,
            vec![],
            vec!["ecr-public:SetRepositoryPolicy"],
        ),
    ];
    for (name, d, observed, logo, sent, managed, expect) in cases {
        let managed: Vec<String> = managed.into_iter().map(str::to_owned).collect();
        let changes = plan(d, &observed, logo, sent, &managed);
        let ops: Vec<_> = changes.iter().map(PublicChange::operation).collect();
        assert_eq!(ops, expect, "{name}");
    }
    // Tags: a desired value ECR lacks is set, a key this operator set and no longer wants is
    // removed, the owner tag never.
    let mut observed = in_sync(&d);
    observed.tags.remove("team");
    observed.tags.insert("old".into(), "x".into());
    observed.tags.insert("theirs".into(), "y".into());
    let changes = plan(&d, &observed, None, None, &["old".into(), OWNER_TAG.into()]);
    assert_eq!(
        changes,
        [
            PublicChange::TagResource(tags(&[("team", "a")])),
            PublicChange::UntagResource(vec!["old".into()]),
        ]
    );
    // The same policy in another form is in sync.
    let mut observed = in_sync(&with_policy);
    observed.policy = Some(r#"{"Statement":[{"Action":["ecr-public:*"],"Principal":"*","Effect":"Allow"}],"Version":"2012-10-17"}"#.into());
    assert!(plan(&with_policy, &observed, None, None, &[]).is_empty());
    // A logo is sent with the catalog only when stale; the text always.
    let changes = plan(
        &d,
        &drifted_catalog(with_url(in_sync(&d))),
        Some(&logo),
        Some(&sha),
        &[],
    );
    assert_eq!(
        changes,
        [PublicChange::PutCatalog {
            catalog: catalog(),
            logo: None
        }]
    );
}

#[test]
fn decide_checks_ownership_adoption_and_observe_only() {
    let d = desired(&repo(spec()), "c1").unwrap();
    let unowned = |mut o: Observed| {
        o.tags.remove(OWNER_TAG);
        o
    };
    assert_eq!(
        decide(&d, &in_sync(&d), full(), None, None, &[]).unwrap(),
        Step::Apply {
            adopt: false,
            changes: vec![]
        }
    );
    match decide(&d, &unowned(in_sync(&d)), full(), None, None, &[]).unwrap() {
        Step::Apply { adopt, changes } => {
            assert!(adopt);
            assert_eq!(changes.len(), 1, "the owner tag: {changes:?}");
        }
        other => panic!("{other:?}"),
    }
    let create_only = Mode {
        adoption: Adoption::CreateOnly,
        ..full()
    };
    let e = decide(&d, &unowned(in_sync(&d)), create_only, None, None, &[]).unwrap_err();
    assert_eq!(e.reason(), "AlreadyExists");
    let mut theirs = in_sync(&d);
    theirs.tags.insert(OWNER_TAG.into(), "c2/other/web".into());
    let e = decide(&d, &theirs, full(), None, None, &[]).unwrap_err();
    assert_eq!(e.reason(), "OwnedElsewhere");
    assert!(e.to_string().contains("c2/other/web"), "{e}");
    // An observer may watch what another owns, and writes nothing.
    let observe = Mode {
        observe_only: true,
        ..full()
    };
    let mut drifted = theirs.clone();
    drifted.catalog.catalog.about_text = "edited".into();
    assert_eq!(
        decide(&d, &drifted, observe, None, None, &[]).unwrap(),
        Step::Observe {
            drift: vec!["ecr-public:PutRepositoryCatalogData", "ecr-public:TagResource"]
        }
    );
}

#[test]
fn first_step_creates_with_everything_or_refuses_to_observe_nothing() {
    let d = desired(&repo(spec()), "c1").unwrap();
    let logo = check_logo("s", PNG.to_vec()).unwrap();
    match first_step(&d, None, full(), Some(&logo)).unwrap() {
        First::Create(new) => {
            assert_eq!(new.catalog, catalog());
            assert_eq!(new.logo.as_deref(), Some(PNG));
            assert_eq!(new.tags.get(OWNER_TAG).map(String::as_str), Some(OWNER));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        first_step(&d, Some(remote()), full(), None).unwrap(),
        First::Exists(remote())
    );
    let observe = Mode {
        observe_only: true,
        ..full()
    };
    assert_eq!(
        first_step(&d, None, observe, None).unwrap_err().reason(),
        "RepositoryNotFound"
    );
}

#[test]
fn status_shows_the_public_uri_alias_and_display_name() {
    let r = repo(spec());
    let now = Time(k8s_openapi::jiff::Timestamp::from_second(1_700_000_000).unwrap());
    let synced = Synced {
        repo: remote(),
        registry: PublicRegistryInfo {
            registry_id: "123456789012".into(),
            alias: Some("alias".into()),
            display_name: Some("Example Corp".into()),
        },
        created: true,
        adopted: false,
        changes: vec![],
        observe_only: false,
        logo_sha256: Some("abc".into()),
    };
    let status = next_status(&r, &Ok(synced.clone()), &now);
    assert_eq!(status.repository_uri.as_deref(), Some("public.ecr.aws/alias/web"));
    assert_eq!(status.registry_alias.as_deref(), Some("alias"));
    assert_eq!(status.registry_display_name.as_deref(), Some("Example Corp"));
    assert_eq!(status.logo_sha256.as_deref(), Some("abc"));
    assert_eq!(status.managed_tag_keys, ["team"]);
    assert_eq!(status.observed_generation, Some(3));
    let ready = status.conditions.iter().find(|c| c.type_ == "Ready").unwrap();
    assert_eq!(ready.status, "True");
    assert!(
        ready.message.contains("public.ecr.aws/alias/web"),
        "{}",
        ready.message
    );
    assert_eq!(event(&synced).map(|e| e.0), Some("Created"));

    let e = Error::RepositoryNotEmpty {
        name: "web".into(),
        images: 2,
    };
    let status = next_status(&r, &Err(e), &now);
    let stalled = status.conditions.iter().find(|c| c.type_ == "Stalled").unwrap();
    assert_eq!(
        (stalled.status.as_str(), stalled.reason.as_str()),
        ("True", "RepositoryNotEmpty")
    );

    let observing = Synced {
        observe_only: true,
        created: false,
        changes: vec!["ecr-public:SetRepositoryPolicy"],
        ..synced
    };
    let status = next_status(&r, &Ok(observing.clone()), &now);
    let drifted = status.conditions.iter().find(|c| c.type_ == DRIFTED).unwrap();
    assert_eq!(drifted.status, "True");
    assert_eq!(status.logo_sha256, None, "an observer sends no logo");
    assert_eq!(event(&observing), None, "an observer changes nothing");
}
