//! Tenants in one partition (`TENANT`, by id) and each tenant's keys in its own
//! (`TKEY#<tenant>`, by key id, so newest last). A key's item holds the SHA-256 of its
//! secret, never the secret, and expires by TTL when the key does. A deleted tenant's
//! item stays, marked `deleted_at`, until its data has aged out (TTL at the retention),
//! so its id cannot be taken meanwhile by a new tenant that would inherit its log.

use super::cursor;
use super::keys::{TENANT_PK, tenant_keys_pk};
use super::reader::Reader;
use super::{DynamoStore, Item, conditional, n, query_all, s};
use crate::adapters::classify;
use crate::ids::{TenantId, TenantKeyId};
use crate::ports::{Page, PortError, PortResult, TenantStore};
use crate::tenant::Tenant;
use crate::tenant_key::{TenantKey, TenantScope};
use crate::tenant_limits::TenantLimits;
use crate::timestamp::Timestamp;
use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::{BTreeMap, HashMap};

const READ: &str = "read stored tenant";

fn tenant_to_item(t: &Tenant) -> Item {
    let mut item: Item = HashMap::from([
        ("pk".into(), s(TENANT_PK)),
        ("sk".into(), s(t.id.as_str())),
        ("name".into(), s(&t.name)),
        (
            "metadata".into(),
            AttributeValue::M(t.metadata.iter().map(|(k, v)| (k.clone(), s(v))).collect()),
        ),
        ("created_at".into(), n(t.created_at.unix_millis())),
        ("updated_at".into(), n(t.updated_at.unix_millis())),
    ]);
    if let Some(r) = t.limits.ingest_per_second {
        item.insert("ingest_per_second".into(), n(r));
    }
    if let Some(m) = t.limits.max_endpoints {
        item.insert("max_endpoints".into(), n(m));
    }
    item
}

fn tenant_from_item(item: &Item) -> PortResult<Tenant> {
    let r = Reader(item);
    let metadata = match item.get("metadata") {
        Some(AttributeValue::M(m)) => m
            .iter()
            .map(|(k, v)| match v {
                AttributeValue::S(v) => Ok((k.clone(), v.clone())),
                _ => Err(PortError::permanent(READ, "a `metadata` value is not a string")),
            })
            .collect::<PortResult<BTreeMap<_, _>>>()?,
        _ => BTreeMap::new(),
    };
    Ok(Tenant {
        id: r.parse("sk", TenantId::parse)?,
        name: r.str("name")?.to_owned(),
        metadata,
        limits: TenantLimits {
            ingest_per_second: r.opt_num("ingest_per_second"),
            max_endpoints: r.opt_num("max_endpoints"),
        },
        created_at: Timestamp::from_unix_millis(r.num("created_at")?),
        updated_at: Timestamp::from_unix_millis(r.num("updated_at")?),
    })
}

fn key_to_item(k: &TenantKey) -> Item {
    let mut item = HashMap::from([
        ("pk".into(), s(tenant_keys_pk(&k.tenant_id))),
        ("sk".into(), s(k.id.as_str())),
        ("scope".into(), s(k.scope.as_str())),
        ("secret_hash".into(), s(&k.secret_hash)),
        ("created_at".into(), n(k.created_at.unix_millis())),
    ]);
    if let Some(name) = &k.name {
        item.insert("name".into(), s(name));
    }
    if let Some(at) = k.expires_at {
        item.insert("key_expires_at".into(), n(at.unix_millis()));
        // TTL removes it some time after; `TenantKey::admits` refuses it at once.
        item.insert("expires_at".into(), n(at.unix_seconds()));
    }
    item
}

fn key_from_item(tenant: &TenantId, item: &Item) -> PortResult<TenantKey> {
    let r = Reader(item);
    Ok(TenantKey {
        id: r.parse("sk", TenantKeyId::parse)?,
        tenant_id: tenant.clone(),
        scope: r.parse("scope", |s| TenantScope::parse(s).ok_or("not a scope"))?,
        name: r.opt_str("name").map(str::to_owned),
        expires_at: r.opt_num("key_expires_at").map(Timestamp::from_unix_millis),
        created_at: Timestamp::from_unix_millis(r.num("created_at")?),
        secret_hash: r.str("secret_hash")?.to_owned(),
    })
}

#[async_trait]
impl TenantStore for DynamoStore {
    async fn create_tenant(&self, tenant: &Tenant) -> PortResult<bool> {
        let res = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(tenant_to_item(tenant)))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        conditional(res.map(|_| ()), "PutItem tenant")
    }

    async fn get_tenant(&self, id: &TenantId) -> PortResult<Option<Tenant>> {
        let live = |item: &&Item| !item.contains_key("deleted_at");
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(TENANT_PK))
            .key("sk", s(id.as_str()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| classify("GetItem tenant", e))?;
        out.item().filter(live).map(tenant_from_item).transpose()
    }

    async fn list_tenants(&self, limit: u32, cursor: Option<&str>) -> PortResult<Page<Tenant>> {
        self.partition_page(
            TENANT_PK,
            limit,
            cursor
                .map(|c| {
                    cursor::decode(
                        c,
                        |sk| TenantId::parse(sk).map(|_| sk.to_owned()),
                        "Query tenants",
                    )
                })
                .transpose()?,
            Some("attribute_not_exists(deleted_at)"),
            tenant_from_item,
            "Query tenants",
        )
        .await
    }

    async fn update_tenant(&self, tenant: &Tenant) -> PortResult<bool> {
        let res = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(tenant_to_item(tenant)))
            .condition_expression("attribute_exists(pk) AND attribute_not_exists(deleted_at)")
            .send()
            .await;
        conditional(res.map(|_| ()), "PutItem tenant update")
    }

    async fn delete_tenant(&self, id: &TenantId) -> PortResult<bool> {
        let now = Timestamp::now();
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(TENANT_PK))
            .key("sk", s(id.as_str()))
            .update_expression("SET deleted_at = :now, expires_at = :ttl")
            .condition_expression("attribute_exists(pk) AND attribute_not_exists(deleted_at)")
            .expression_attribute_values(":now", n(now.unix_millis()))
            .expression_attribute_values(":ttl", self.expires_at(now))
            .send()
            .await;
        conditional(res.map(|_| ()), "UpdateItem tenant delete")
    }

    async fn create_key(&self, key: &TenantKey) -> PortResult<()> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(key_to_item(key)))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
            .map_err(|e| classify("PutItem tenant key", e))?;
        Ok(())
    }

    async fn get_key(&self, tenant: &TenantId, id: &TenantKeyId) -> PortResult<Option<TenantKey>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(tenant_keys_pk(tenant)))
            .key("sk", s(id.as_str()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| classify("GetItem tenant key", e))?;
        out.item().map(|item| key_from_item(tenant, item)).transpose()
    }

    async fn list_keys(&self, tenant: &TenantId) -> PortResult<Vec<TenantKey>> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(tenant_keys_pk(tenant)))
            .scan_index_forward(false)
            .consistent_read(true);
        query_all(query, "Query tenant keys")
            .await?
            .iter()
            .map(|item| key_from_item(tenant, item))
            .collect()
    }

    async fn delete_key(&self, tenant: &TenantId, id: &TenantKeyId) -> PortResult<bool> {
        let res = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(tenant_keys_pk(tenant)))
            .key("sk", s(id.as_str()))
            .condition_expression("attribute_exists(pk)")
            .send()
            .await;
        conditional(res.map(|_| ()), "DeleteItem tenant key")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenant_and_a_key_read_back_as_written_and_the_key_item_holds_no_secret() {
        let now = Timestamp::from_unix_millis(1_795_935_600_000);
        let tenant = Tenant {
            id: TenantId::parse("cus_42").unwrap(),
            name: "Acme".into(),
            metadata: BTreeMap::from([("plan".into(), "pro".into())]),
            limits: TenantLimits {
                ingest_per_second: Some(5),
                max_endpoints: None,
            },
            created_at: now,
            updated_at: now,
        };
        assert_eq!(tenant_from_item(&tenant_to_item(&tenant)).unwrap(), tenant);
        let later = now.saturating_add(std::time::Duration::from_secs(3600));
        let (key, secret) = TenantKey::issue(
            &tenant.id,
            TenantScope::Manage,
            Some("ci".into()),
            Some(later),
            now,
        );
        let item = key_to_item(&key);
        assert_eq!(key_from_item(&tenant.id, &item).unwrap(), key);
        let tail = &secret[secret.rfind('.').unwrap() + 1..];
        assert!(
            item.values()
                .all(|v| v.as_s().map_or(true, |s| !s.contains(tail)))
        );
    }
}
