//! `vmctl team` and `vmctl project`: create, members, and what they store.

use super::*;

#[tokio::test]
async fn team_create_add_member_remove_member() {
    init_env();
    let (table, repo) = fresh_table().await;
    let t = Some(table.as_str());
    let id = ok(
        t,
        &[
            "team",
            "create",
            "--owner",
            "auth0|alice",
            "--name",
            "Acme",
            "--email",
            "ops@acme.example",
            "--max-active-vms",
            "5",
        ],
    )
    .trim()
    .to_string();
    let team = stored_team(&repo, &id).await.expect("the team is stored");
    assert_eq!(
        (team.name.as_str(), team.email.as_str()),
        ("Acme", "ops@acme.example")
    );
    assert_eq!(
        team.role_of(&UserId::parse("auth0|alice").unwrap()),
        Some(Role::Owner)
    );
    assert_eq!(team.quotas.unwrap().max_active_vms, Some(5));

    // The same id again: refused, the first team unchanged.
    let e = refused(
        t,
        &[
            "team",
            "create",
            "--id",
            &id,
            "--owner",
            "mallory",
            "--name",
            "X",
            "--email",
            "x@x.example",
        ],
    );
    assert!(e.contains("exists already"), "{e}");
    assert_eq!(stored_team(&repo, &id).await.unwrap(), team);
    let e = refused(
        t,
        &[
            "team", "create", "--owner", "bob", "--name", "Acme", "--email", "nobody",
        ],
    );
    assert!(e.contains("email"), "{e}");

    let out = ok(
        t,
        &[
            "team",
            "add-member",
            &id,
            "--user",
            "bob",
            "--role",
            "admin",
        ],
    );
    assert!(
        out.contains("bob joined team") && out.contains("as admin"),
        "{out}"
    );
    let out = ok(
        t,
        &["team", "add-member", &id, "--user", "bob", "--role", "3"],
    );
    assert!(
        out.contains("now viewer") && out.contains("was admin"),
        "{out}"
    );
    let e = refused(
        t,
        &["team", "add-member", &id, "--user", "bob", "--role", "boss"],
    );
    assert!(e.contains("'boss' is not a role"), "{e}");
    let e = refused(
        t,
        &[
            "team",
            "add-member",
            &id,
            "--user",
            "auth0|alice",
            "--role",
            "member",
        ],
    );
    assert!(e.contains("no owner left"), "{e}");

    let shown = ok(t, &["team", "show", &id]);
    let lines: Vec<&str> = shown.lines().collect();
    assert!(
        lines[1].starts_with("USER") && lines[1].contains("ROLE"),
        "{shown}"
    );
    assert!(shown.contains("bob          viewer (3)"), "{shown}");

    let e = refused(
        t,
        &[
            "team",
            "remove-member",
            &id,
            "--user",
            "bob",
            "--role",
            "admin",
        ],
    );
    assert!(
        e.contains("is viewer") && e.contains("nothing removed"),
        "{e}"
    );
    let out = ok(
        t,
        &[
            "team",
            "remove-member",
            &id,
            "--user",
            "bob",
            "--role",
            "viewer",
        ],
    );
    assert!(out.contains("bob (viewer) left team"), "{out}");
    let e = refused(t, &["team", "remove-member", &id, "--user", "auth0|alice"]);
    assert!(e.contains("no owner left"), "{e}");
    let members = stored_team(&repo, &id).await.unwrap().members;
    assert_eq!(members.len(), 1);
    assert_eq!(members[0].user.as_str(), "auth0|alice");

    let e = refused(
        t,
        &[
            "team",
            "add-member",
            &TeamId::new().to_string(),
            "--user",
            "bob",
            "--role",
            "member",
        ],
    );
    assert!(e.contains("not found"), "{e}");
}

#[tokio::test]
async fn project_create() {
    init_env();
    let (table, repo) = fresh_table().await;
    let t = Some(table.as_str());
    let team = ok(
        t,
        &[
            "team",
            "create",
            "--owner",
            "alice",
            "--name",
            "Acme",
            "--email",
            "ops@acme.example",
        ],
    )
    .trim()
    .to_string();
    ok(
        t,
        &[
            "team",
            "add-member",
            &team,
            "--user",
            "vera",
            "--role",
            "viewer",
        ],
    );
    let id = ok(
        t,
        &[
            "project",
            "create",
            "--team",
            &team,
            "--name",
            "web",
            "--owner",
            "alice",
            "--purpose",
            "shop",
            "--default",
        ],
    )
    .trim()
    .to_string();
    let pid: vmapi_models::ProjectId = id.parse().unwrap();
    let mut lookup = Lookup::default();
    lookup.projects.insert(pid);
    let p = repo
        .lookup(&lookup)
        .await
        .unwrap()
        .projects
        .remove(&pid)
        .expect("stored");
    assert_eq!(
        (
            p.name.as_str(),
            p.purpose.as_str(),
            p.is_default,
            p.team.to_string()
        ),
        ("web", "shop", true, team.clone())
    );

    let e = refused(
        t,
        &[
            "project", "create", "--team", &team, "--name", "x", "--owner", "vera",
        ],
    );
    assert!(e.contains("viewer"), "{e}");
    let e = refused(
        t,
        &[
            "project",
            "create",
            "--team",
            &TeamId::new().to_string(),
            "--name",
            "x",
            "--owner",
            "alice",
        ],
    );
    assert!(e.contains("Team") && e.contains("not found"), "{e}");
    let e = refused(
        t,
        &[
            "project", "create", "--id", &id, "--team", &team, "--name", "again", "--owner",
            "alice",
        ],
    );
    assert!(e.contains("exists already"), "{e}");
    assert_eq!(
        repo.lookup(&lookup).await.unwrap().projects[&pid].name,
        "web"
    );
}
