//! Tenants and their keys in memory.

use super::MemoryStore;
use crate::ids::{TenantId, TenantKeyId};
use crate::ports::{Page, PortError, PortResult, TenantStore};
use crate::tenant::Tenant;
use crate::tenant_key::TenantKey;
use async_trait::async_trait;

#[async_trait]
impl TenantStore for MemoryStore {
    async fn create_tenant(&self, tenant: &Tenant) -> PortResult<bool> {
        self.check()?;
        let mut all = self.tenants.lock().unwrap();
        if all.contains_key(&tenant.id) || self.tenants_gone.lock().unwrap().contains(&tenant.id) {
            return Ok(false);
        }
        all.insert(tenant.id.clone(), tenant.clone());
        Ok(true)
    }

    async fn get_tenant(&self, id: &TenantId) -> PortResult<Option<Tenant>> {
        self.check()?;
        Ok(self.tenants.lock().unwrap().get(id).cloned())
    }

    async fn list_tenants(&self, limit: u32, cursor: Option<&str>) -> PortResult<Page<Tenant>> {
        self.check()?;
        let after = cursor
            .map(|c| TenantId::parse(c).map_err(|_| PortError::permanent("memory store", "bad cursor")))
            .transpose()?;
        let all = self.tenants.lock().unwrap();
        let items: Vec<Tenant> = all
            .values()
            .filter(|t| after.as_ref().is_none_or(|a| &t.id > a))
            .take(limit as usize)
            .cloned()
            .collect();
        let next_cursor = (items.len() == limit as usize)
            .then(|| items.last().map(|t| t.id.to_string()))
            .flatten();
        Ok(Page { items, next_cursor })
    }

    async fn update_tenant(&self, tenant: &Tenant) -> PortResult<bool> {
        self.check()?;
        let mut all = self.tenants.lock().unwrap();
        Ok(match all.get_mut(&tenant.id) {
            Some(t) => {
                *t = tenant.clone();
                true
            }
            None => false,
        })
    }

    async fn delete_tenant(&self, id: &TenantId) -> PortResult<bool> {
        self.check()?;
        let existed = self.tenants.lock().unwrap().remove(id).is_some();
        if existed {
            self.tenants_gone.lock().unwrap().insert(id.clone());
        }
        Ok(existed)
    }

    async fn create_key(&self, key: &TenantKey) -> PortResult<()> {
        self.check()?;
        self.tenant_keys
            .lock()
            .unwrap()
            .insert((key.tenant_id.clone(), key.id.clone()), key.clone());
        Ok(())
    }

    async fn get_key(&self, tenant: &TenantId, id: &TenantKeyId) -> PortResult<Option<TenantKey>> {
        self.check()?;
        Ok(self
            .tenant_keys
            .lock()
            .unwrap()
            .get(&(tenant.clone(), id.clone()))
            .cloned())
    }

    async fn list_keys(&self, tenant: &TenantId) -> PortResult<Vec<TenantKey>> {
        self.check()?;
        let mut keys: Vec<TenantKey> = self
            .tenant_keys
            .lock()
            .unwrap()
            .values()
            .filter(|k| &k.tenant_id == tenant)
            .cloned()
            .collect();
        keys.reverse();
        Ok(keys)
    }

    async fn delete_key(&self, tenant: &TenantId, id: &TenantKeyId) -> PortResult<bool> {
        self.check()?;
        Ok(self
            .tenant_keys
            .lock()
            .unwrap()
            .remove(&(tenant.clone(), id.clone()))
            .is_some())
    }
}
