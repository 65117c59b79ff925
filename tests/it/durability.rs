//! The store survives `kill -9` during writes: every write acknowledged with a
//! 2xx is there after restart, and SQLite's integrity check passes. Repeated.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::ConnectOptions;

use crate::support::{seed_sessions, Dirs, Server};

#[derive(Default, Clone)]
struct Acked {
    /// session id → highest counter acknowledged by a 2xx.
    counters: HashMap<String, i64>,
    deleted: Vec<String>,
    archived: HashMap<String, bool>,
    workspaces: Vec<String>,
}

#[tokio::test]
async fn acknowledged_writes_survive_kill_9() {
    let d = Dirs::new();
    let ids = seed_sessions(&d, 120, |_, _| {}).await;
    let acked = Arc::new(Mutex::new(Acked::default()));
    for round in 0..4 {
        let mut s = Server::start(&d).await;
        let mut tasks = Vec::new();
        // Six writers, each owning a disjoint slice of sessions, writing in sequence.
        for w in 0..6usize {
            let mine: Vec<String> = ids.iter().skip(w).step_by(6).cloned().collect();
            let client = s.client.clone();
            let base = s.url("");
            let acked = acked.clone();
            tasks.push(tokio::spawn(async move {
                for n in 0i64.. {
                    let id = &mine[(n as usize) % mine.len()];
                    if acked.lock().unwrap().deleted.contains(id) {
                        tokio::task::yield_now().await;
                        continue;
                    }
                    let counter = (round * 1_000_000) as i64 + n;
                    let r = match n % 10 {
                        // Every so often: archive toggles, a deletion, a workspace file.
                        3 => {
                            let path = format!("{base}/api/chat/{id}/archive");
                            client
                                .post(path)
                                .send()
                                .await
                                .map(|r| (r.status().is_success(), "archive"))
                        }
                        7 if w == 0 && n % 40 == 7 && n < 200 => {
                            let path = format!("{base}/api/chat/{id}");
                            client
                                .delete(path)
                                .send()
                                .await
                                .map(|r| (r.status().is_success(), "delete"))
                        }
                        9 => {
                            let path = format!("{base}/api/workspaces");
                            let name = format!("ws {round} {w} {n}");
                            match client.post(path).json(&json!({"name": name})).send().await {
                                Ok(r) if r.status().is_success() => {
                                    let v: serde_json::Value = r.json().await.unwrap_or_default();
                                    if let Some(slug) = v["workspace"]["slug"].as_str() {
                                        acked.lock().unwrap().workspaces.push(slug.to_string());
                                    }
                                    Ok((false, "ws"))
                                }
                                Ok(_) => Ok((false, "ws")),
                                Err(e) => Err(e),
                            }
                        }
                        _ => {
                            let path = format!("{base}/api/chat/{id}/config");
                            client
                                .patch(path)
                                .json(&json!({"configOverrides": {"counter": counter}}))
                                .send()
                                .await
                                .map(|r| (r.status().is_success(), "patch"))
                        }
                    };
                    match r {
                        Ok((true, "patch")) => {
                            acked.lock().unwrap().counters.insert(id.clone(), counter);
                        }
                        Ok((true, "archive")) => {
                            acked.lock().unwrap().archived.insert(id.clone(), true);
                        }
                        Ok((true, "delete")) => {
                            acked.lock().unwrap().deleted.push(id.clone());
                        }
                        Ok(_) => {}
                        Err(_) => return, // the server is gone
                    }
                }
            }));
        }
        tokio::time::sleep(Duration::from_millis(400 + 150 * round as u64)).await;
        s.kill9();
        for t in tasks {
            let _ = t.await;
        }

        // Restart on the same files and check every acknowledged write.
        let s = Server::start(&d).await;
        let snapshot = acked.lock().unwrap().clone();
        assert!(
            !snapshot.counters.is_empty(),
            "round {round}: some writes must have been acknowledged"
        );
        for (id, counter) in &snapshot.counters {
            if snapshot.deleted.contains(id) {
                continue;
            }
            let (st, v) = s.get(&format!("/api/chat/{id}")).await;
            assert_eq!(st, 200, "round {round}: session {id} lost");
            let stored = v["metadata"]["config_overrides"]["counter"]
                .as_i64()
                .unwrap_or(-1);
            // The in-flight write may also have landed, never an older one.
            assert!(
                stored >= *counter,
                "round {round}: {id} has {stored}, acknowledged {counter}"
            );
        }
        for id in &snapshot.deleted {
            assert_eq!(
                s.get(&format!("/api/chat/{id}")).await.0,
                404,
                "deleted {id} came back"
            );
        }
        for id in snapshot.archived.keys() {
            if !snapshot.deleted.contains(id) {
                let (_, v) = s.get(&format!("/api/chat/{id}")).await;
                assert_eq!(v["archived"], true, "archive of {id} lost");
            }
        }
        for slug in &snapshot.workspaces {
            assert_eq!(
                s.get(&format!("/api/workspaces/{slug}")).await.0,
                200,
                "workspace {slug} lost"
            );
        }
        drop(s);
    }
    // The file itself is sound.
    let mut conn = SqliteConnectOptions::new()
        .filename(d.db_path())
        .connect()
        .await
        .unwrap();
    let (check,): (String,) = sqlx::query_as("PRAGMA integrity_check")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(check, "ok");
    let (fk,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM pragma_foreign_key_check")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(fk, 0);
}
