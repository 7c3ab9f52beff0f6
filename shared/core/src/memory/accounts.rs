//! The in-memory [`AccountStore`]: teams, projects and the catalog.

use std::collections::HashMap;

use async_trait::async_trait;
use vmapi_models::{Catalog, Project, Team, Timestamp};

use super::repository::MemoryRepository;
use crate::error::{Error, Result};
use crate::ports::AccountStore;

#[async_trait]
impl AccountStore for MemoryRepository {
    async fn insert_team(&self, team: &Team) -> Result<()> {
        let mut s = self.state.lock().unwrap();
        if s.found.teams.contains_key(&team.id) {
            return Err(Error::invalid_field(
                "_id",
                format!("team {} exists already", team.id),
            ));
        }
        s.found.teams.insert(team.id, team.clone());
        Ok(())
    }

    async fn replace_team(&self, team: &Team, expected_updated_at: Timestamp) -> Result<()> {
        let mut s = self.state.lock().unwrap();
        match s.found.teams.get(&team.id) {
            None => return Err(Error::not_found(crate::NotFoundKind::Team, team.id)),
            Some(old) if old.updated_at != expected_updated_at => {
                return Err(Error::VersionConflict)
            }
            Some(_) => {}
        }
        s.found.teams.insert(team.id, team.clone());
        Ok(())
    }

    async fn insert_project(&self, project: &Project) -> Result<()> {
        let mut s = self.state.lock().unwrap();
        if !s.found.teams.contains_key(&project.team) {
            return Err(Error::not_found(crate::NotFoundKind::Team, project.team));
        }
        if s.found.projects.contains_key(&project.id) {
            return Err(Error::invalid_field(
                "_id",
                format!("project {} exists already", project.id),
            ));
        }
        s.found.projects.insert(project.id, project.clone());
        Ok(())
    }

    async fn put_catalog(&self, catalog: &Catalog) -> Result<usize> {
        let mut s = self.state.lock().unwrap();
        let f = &mut s.found;
        f.cloud_providers
            .extend(catalog.cloud_providers.iter().map(|c| (c.id, c.clone())));
        f.providers
            .extend(catalog.providers.iter().map(|p| (p.id, p.clone())));
        f.sizes
            .extend(catalog.sizes.iter().map(|z| (z.id, z.clone())));
        f.prices
            .extend(catalog.prices.iter().map(|p| (p.id, p.clone())));
        Ok(catalog.len())
    }

    async fn catalog(&self) -> Result<Catalog> {
        let s = self.state.lock().unwrap();
        fn sorted<K: Ord + Copy + std::hash::Hash, V: Clone>(m: &HashMap<K, V>) -> Vec<V> {
            let mut keys: Vec<&K> = m.keys().collect();
            keys.sort();
            keys.into_iter().map(|k| m[k].clone()).collect()
        }
        Ok(Catalog {
            cloud_providers: sorted(&s.found.cloud_providers),
            providers: sorted(&s.found.providers),
            sizes: sorted(&s.found.sizes),
            prices: sorted(&s.found.prices),
        })
    }
}
