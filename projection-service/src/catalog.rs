//! `CatalogSearch`: the requestable catalog (apps and entitlements) and the
//! word index that answers `GET /catalog?query=`.
//!
//! The projection keeps, in its sled tree, one [`CatalogItem`] per app and per
//! entitlement (`i/<id>`), plus what it needs to recompute them when an app
//! changes (`a/<appId>`, `e/<entitlementId>`, `m/<appId>/<entitlementId>`).
//! The [`SearchIndex`] lives in memory beside the tree: it is loaded from the
//! `i/` keys when the tree is opened and follows every committed batch
//! ([`Projection::committed`]), so it is exactly as current as the tree and a
//! consistency token covers it too. Words map to roaring bitmaps of item
//! slots; a query is the intersection, over its words, of the union of the
//! bitmaps of every indexed word starting with that word.
//!
//! The app's built-in "access" entitlement is not listed on its own: the
//! application item stands for it (requesting an app is requesting it).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use iga_domain::entitlement::{apply_update, builtin_access};
use iga_eventlog::RecordedEvent;
use iga_schemas::DomainEvent;
use roaring::RoaringBitmap;
use serde::{Deserialize, Serialize};

use crate::{Projection, ProjectionError, Result, Staged};

pub const NAME: &str = "catalog";
/// Longest query accepted, in bytes.
pub const MAX_QUERY_BYTES: usize = 256;
/// Most words a query may have.
pub const MAX_QUERY_WORDS: usize = 16;

/// One entry of the catalog: what `GET /catalog` answers, plus `deleted`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CatalogItem {
    /// `application` or `entitlement`.
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
    pub app_id: String,
    pub app_display_name: String,
    pub display_name: String,
    pub description: String,
    pub alias: String,
    pub slug: String,
    pub risk_level_value_id: Option<String>,
    /// Requestable now: the entitlement says so and its app is ACTIVE.
    pub requestable: bool,
    /// The entitlement or its app is deleted.
    #[serde(default)]
    pub deleted: bool,
}

/// What the projection remembers of an app.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct AppInfo {
    display_name: String,
    description: String,
    active: bool,
    deleted: bool,
    access_entitlement_id: String,
}

/// What the projection remembers of an entitlement.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct EntitlementInfo {
    fields: iga_schemas::v1::AppEntitlementCreated,
    deleted: bool,
}

fn item_key(id: &str) -> Vec<u8> {
    format!("i/{id}").into_bytes()
}
fn app_key(id: &str) -> Vec<u8> {
    format!("a/{id}").into_bytes()
}
fn ent_key(id: &str) -> Vec<u8> {
    format!("e/{id}").into_bytes()
}
fn member_prefix(app_id: &str) -> Vec<u8> {
    format!("m/{app_id}/").into_bytes()
}

/// The catalog projection; holds the index that follows its tree.
pub struct CatalogSearch {
    index: Arc<SearchIndex>,
}

impl CatalogSearch {
    pub fn new(index: Arc<SearchIndex>) -> Self {
        CatalogSearch { index }
    }
}

impl Projection for CatalogSearch {
    fn name(&self) -> &'static str {
        NAME
    }

    fn apply(
        &self,
        _event: &RecordedEvent,
        decoded: &DomainEvent,
        tx: &mut Staged<'_>,
    ) -> Result<()> {
        match decoded {
            DomainEvent::AppCreated(e) => {
                let app = AppInfo {
                    display_name: e.display_name.clone(),
                    description: e.description.clone(),
                    active: true,
                    deleted: false,
                    access_entitlement_id: e.access_entitlement_id.clone(),
                };
                let access = EntitlementInfo {
                    fields: builtin_access(e),
                    deleted: false,
                };
                tx.put_json(ent_key(&e.access_entitlement_id), &access);
                tx.put_json(app_key(&e.app_id), &app);
                refresh_app(tx, &e.app_id)?;
            }
            DomainEvent::AppUpdated(e) => change_app(tx, &e.app_id, |a| {
                if let Some(v) = &e.display_name {
                    a.display_name.clone_from(v);
                }
                if let Some(v) = &e.description {
                    a.description.clone_from(v);
                }
            })?,
            DomainEvent::AppRestored(e) => change_app(tx, &e.app_id, |a| {
                if let Some(s) = &e.state {
                    a.display_name.clone_from(&s.display_name);
                    a.description.clone_from(&s.description);
                }
            })?,
            DomainEvent::AppActivated(e) => change_app(tx, &e.app_id, |a| a.active = true)?,
            DomainEvent::AppDeactivated(e) => change_app(tx, &e.app_id, |a| a.active = false)?,
            DomainEvent::AppDeleted(e) => change_app(tx, &e.app_id, |a| a.deleted = true)?,
            DomainEvent::AppEntitlementCreated(e) => {
                let info = EntitlementInfo {
                    fields: e.clone(),
                    deleted: false,
                };
                tx.put_json(ent_key(&e.entitlement_id), &info);
                let mut m = member_prefix(&e.app_id);
                m.extend_from_slice(e.entitlement_id.as_bytes());
                tx.put(m, Vec::new());
                refresh_entitlement(tx, &e.app_id, &e.entitlement_id)?;
            }
            DomainEvent::AppEntitlementUpdated(e) => {
                if let Some(mut info) =
                    tx.get_json::<EntitlementInfo>(&ent_key(&e.entitlement_id))?
                {
                    info.fields = apply_update(&info.fields, e);
                    tx.put_json(ent_key(&e.entitlement_id), &info);
                    refresh_entitlement(tx, &e.app_id, &e.entitlement_id)?;
                }
            }
            DomainEvent::AppEntitlementDeleted(e) => {
                if let Some(mut info) =
                    tx.get_json::<EntitlementInfo>(&ent_key(&e.entitlement_id))?
                {
                    info.deleted = true;
                    tx.put_json(ent_key(&e.entitlement_id), &info);
                    refresh_entitlement(tx, &e.app_id, &e.entitlement_id)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn opened(&self, tree: &sled::Tree) -> Result<()> {
        let mut items = Vec::new();
        for kv in tree.scan_prefix(b"i/") {
            let (_, v) = kv?;
            items.push(decode_item(&v)?);
        }
        self.index.replace_all(items);
        Ok(())
    }

    fn committed(&self, writes: &crate::Writes) {
        let mut changes = Vec::new();
        for (k, v) in writes {
            let Some(id) = k.strip_prefix(b"i/") else {
                continue;
            };
            let id = String::from_utf8_lossy(id).into_owned();
            // Items were encoded by this projection a moment ago.
            let item = v.as_deref().and_then(|v| decode_item(v).ok());
            changes.push((id, item));
        }
        if !changes.is_empty() {
            self.index.apply(changes);
        }
    }
}

fn decode_item(v: &[u8]) -> Result<CatalogItem> {
    serde_json::from_slice(v).map_err(|e| ProjectionError::Corrupt(format!("catalog item: {e}")))
}

fn change_app(tx: &mut Staged<'_>, app_id: &str, f: impl FnOnce(&mut AppInfo)) -> Result<()> {
    let Some(mut app) = tx.get_json::<AppInfo>(&app_key(app_id))? else {
        return Ok(());
    };
    f(&mut app);
    tx.put_json(app_key(app_id), &app);
    refresh_app(tx, app_id)
}

/// Recomputes the app's item and the items of all its entitlements.
fn refresh_app(tx: &mut Staged<'_>, app_id: &str) -> Result<()> {
    let Some(app) = tx.get_json::<AppInfo>(&app_key(app_id))? else {
        return Ok(());
    };
    let access = tx
        .get_json::<EntitlementInfo>(&ent_key(&app.access_entitlement_id))?
        .unwrap_or_default();
    tx.put_json(item_key(app_id), &app_item(app_id, &app, &access));
    for id in tx.keys_with_prefix(&member_prefix(app_id))? {
        let id = String::from_utf8_lossy(&id[member_prefix(app_id).len()..]).into_owned();
        if id != app.access_entitlement_id {
            refresh_entitlement(tx, app_id, &id)?;
        }
    }
    Ok(())
}

fn refresh_entitlement(tx: &mut Staged<'_>, app_id: &str, id: &str) -> Result<()> {
    let Some(app) = tx.get_json::<AppInfo>(&app_key(app_id))? else {
        return Ok(());
    };
    let Some(ent) = tx.get_json::<EntitlementInfo>(&ent_key(id))? else {
        return Ok(());
    };
    if ent.fields.system_builtin {
        tx.put_json(item_key(app_id), &app_item(app_id, &app, &ent));
        return Ok(());
    }
    let f = &ent.fields;
    let item = CatalogItem {
        kind: "entitlement".into(),
        id: id.to_string(),
        app_id: app_id.to_string(),
        app_display_name: app.display_name.clone(),
        display_name: f.display_name.clone(),
        description: f.description.clone(),
        alias: f.alias.clone(),
        slug: f.slug.clone(),
        risk_level_value_id: Some(f.risk_level_value_id.clone()).filter(|s| !s.is_empty()),
        requestable: f.requestable && app.active && !app.deleted,
        deleted: ent.deleted || app.deleted,
    };
    tx.put_json(item_key(id), &item);
    Ok(())
}

fn app_item(app_id: &str, app: &AppInfo, access: &EntitlementInfo) -> CatalogItem {
    CatalogItem {
        kind: "application".into(),
        id: app_id.to_string(),
        app_id: app_id.to_string(),
        app_display_name: app.display_name.clone(),
        display_name: app.display_name.clone(),
        description: app.description.clone(),
        alias: String::new(),
        slug: String::new(),
        risk_level_value_id: Some(access.fields.risk_level_value_id.clone())
            .filter(|s| !s.is_empty()),
        requestable: access.fields.requestable && app.active && !app.deleted,
        deleted: app.deleted,
    }
}

/// Lowercased words of `text`: runs of letters and digits.
pub fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| w.to_lowercase())
}

/// A catalog query.
#[derive(Debug, Clone, Default)]
pub struct CatalogQuery {
    pub text: String,
    /// `application` or `entitlement`.
    pub kind: Option<String>,
    pub app_id: Option<String>,
    pub risk_level_value_id: Option<String>,
    /// `Some(true)` (the default at the API): requestable items only;
    /// `Some(false)`: only those that are not; `None`: both.
    pub requestable: Option<bool>,
    pub include_deleted: bool,
    /// The sort key of the last item of the previous page.
    pub after: Option<String>,
    pub page_size: usize,
}

/// A page of results.
#[derive(Debug, Clone)]
pub struct CatalogPage {
    pub items: Vec<CatalogItem>,
    /// The sort key of the last item, when more follow.
    pub next: Option<String>,
    pub total_count: u64,
}

struct Entry {
    item: CatalogItem,
    /// Words of the names, alias and slug ("whole word" matches rank above
    /// description-only or prefix matches).
    strong: Vec<String>,
    name_lower: String,
    alias_lower: String,
    all_words: Vec<String>,
}

#[derive(Default)]
struct Inner {
    slots: Vec<Option<Entry>>,
    free: Vec<u32>,
    by_id: HashMap<String, u32>,
    postings: BTreeMap<String, RoaringBitmap>,
    live: RoaringBitmap,
}

/// The in-memory word index over the catalog's items.
#[derive(Default)]
pub struct SearchIndex {
    inner: RwLock<Inner>,
}

impl SearchIndex {
    pub fn new() -> Arc<Self> {
        Arc::new(SearchIndex::default())
    }

    /// How many items the index holds (deleted ones included).
    pub fn len(&self) -> usize {
        self.inner.read().expect("index lock").by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn replace_all(&self, items: Vec<CatalogItem>) {
        let mut inner = Inner::default();
        for item in items {
            inner.upsert(item);
        }
        *self.inner.write().expect("index lock") = inner;
    }

    fn apply(&self, changes: Vec<(String, Option<CatalogItem>)>) {
        let mut inner = self.inner.write().expect("index lock");
        for (id, item) in changes {
            inner.remove(&id);
            if let Some(item) = item {
                inner.upsert(item);
            }
        }
    }

    /// Answers a query: best matches first (exact alias, name prefix, whole
    /// word, then the rest), ties by name and id, so pages are stable.
    pub fn search(&self, q: &CatalogQuery) -> CatalogPage {
        let inner = self.inner.read().expect("index lock");
        let text = q.text.trim().to_lowercase();
        let tokens: Vec<String> = words(&text).collect();
        let mut candidates = inner.live.clone();
        for t in &tokens {
            let mut matching = RoaringBitmap::new();
            for (_, bm) in inner
                .postings
                .range::<str, _>((
                    std::ops::Bound::Included(t.as_str()),
                    std::ops::Bound::Unbounded,
                ))
                .take_while(|(w, _)| w.starts_with(t.as_str()))
            {
                matching |= bm;
            }
            candidates &= matching;
            if candidates.is_empty() {
                break;
            }
        }
        let mut total = 0u64;
        let mut page: Vec<(String, u32)> = Vec::new();
        let want = q.page_size + 1;
        for slot in candidates.iter() {
            let Some(e) = inner.slots[slot as usize].as_ref() else {
                continue;
            };
            if !q.matches_filters(&e.item) {
                continue;
            }
            total += 1;
            let key = sort_key(e, &text, &tokens);
            if q.after
                .as_deref()
                .is_some_and(|after| key.as_str() <= after)
            {
                continue;
            }
            // Keep the best `want` keys seen so far.
            if page.len() < want || key < page[page.len() - 1].0 {
                let at = page.partition_point(|(k, _)| *k < key);
                page.insert(at, (key, slot));
                page.truncate(want);
            }
        }
        let more = page.len() > q.page_size;
        page.truncate(q.page_size);
        let next = if more {
            page.last().map(|(k, _)| k.clone())
        } else {
            None
        };
        let items = page
            .into_iter()
            .filter_map(|(_, slot)| inner.slots[slot as usize].as_ref().map(|e| e.item.clone()))
            .collect();
        CatalogPage {
            items,
            next,
            total_count: total,
        }
    }
}

impl CatalogQuery {
    fn matches_filters(&self, item: &CatalogItem) -> bool {
        (self.include_deleted || !item.deleted)
            && self.requestable.is_none_or(|r| item.requestable == r)
            && self.kind.as_deref().is_none_or(|k| item.kind == k)
            && self.app_id.as_deref().is_none_or(|a| item.app_id == a)
            && self
                .risk_level_value_id
                .as_deref()
                .is_none_or(|r| item.risk_level_value_id.as_deref() == Some(r))
    }
}

/// `tier \0 name \0 id`: tier 0 exact alias, 1 name prefix, 2 every word a
/// whole word of a name, alias or slug, 3 anything else that matched.
fn sort_key(e: &Entry, text: &str, tokens: &[String]) -> String {
    let tier = if text.is_empty() {
        3
    } else if e.alias_lower == text {
        0
    } else if e.name_lower.starts_with(text) {
        1
    } else if tokens.iter().all(|t| e.strong.binary_search(t).is_ok()) {
        2
    } else {
        3
    };
    format!("{tier}\0{}\0{}", e.name_lower, e.item.id)
}

impl Inner {
    fn upsert(&mut self, item: CatalogItem) {
        self.remove(&item.id);
        let mut strong: Vec<String> = words(&item.display_name)
            .chain(words(&item.app_display_name))
            .chain(words(&item.alias))
            .chain(words(&item.slug))
            .collect();
        strong.sort();
        strong.dedup();
        let mut all_words: Vec<String> = strong
            .iter()
            .cloned()
            .chain(words(&item.description))
            .collect();
        all_words.sort();
        all_words.dedup();
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                self.slots.push(None);
                (self.slots.len() - 1) as u32
            }
        };
        for w in &all_words {
            self.postings.entry(w.clone()).or_default().insert(slot);
        }
        self.live.insert(slot);
        self.by_id.insert(item.id.clone(), slot);
        self.slots[slot as usize] = Some(Entry {
            name_lower: item.display_name.to_lowercase(),
            alias_lower: item.alias.to_lowercase(),
            item,
            strong,
            all_words,
        });
    }

    fn remove(&mut self, id: &str) {
        let Some(slot) = self.by_id.remove(id) else {
            return;
        };
        if let Some(e) = self.slots[slot as usize].take() {
            for w in &e.all_words {
                if let Some(bm) = self.postings.get_mut(w) {
                    bm.remove(slot);
                    if bm.is_empty() {
                        self.postings.remove(w);
                    }
                }
            }
        }
        self.live.remove(slot);
        self.free.push(slot);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: &str, name: &str, alias: &str, description: &str) -> CatalogItem {
        CatalogItem {
            kind: "entitlement".into(),
            id: id.into(),
            app_id: "a1".into(),
            app_display_name: "GitHub".into(),
            display_name: name.into(),
            description: description.into(),
            alias: alias.into(),
            slug: String::new(),
            risk_level_value_id: None,
            requestable: true,
            deleted: false,
        }
    }

    fn ids(index: &SearchIndex, text: &str) -> Vec<String> {
        let q = CatalogQuery {
            text: text.into(),
            requestable: Some(true),
            page_size: 100,
            ..Default::default()
        };
        index.search(&q).items.into_iter().map(|i| i.id).collect()
    }

    #[test]
    fn ranks_exact_alias_then_name_prefix_then_word_then_description() {
        let index = SearchIndex::default();
        index.replace_all(vec![
            item("desc", "Reader", "", "grants admin rights"),
            item("word", "Org Admin", "", ""),
            item("prefix", "Admin console", "", ""),
            item("alias", "Superuser", "admin", ""),
            item("partial", "Administrator", "", ""),
            item("none", "Viewer", "", ""),
        ]);
        assert_eq!(
            ids(&index, "ADMIN"),
            ["alias", "prefix", "partial", "word", "desc"]
        );
        // Word prefixes match; every word must match.
        assert_eq!(ids(&index, "adm cons"), ["prefix"]);
        assert_eq!(ids(&index, "git view"), ["none"]);
    }

    #[test]
    fn follows_changes_and_pages_stably() {
        let index = SearchIndex::default();
        index.replace_all(
            (0..10)
                .map(|i| item(&format!("e{i}"), &format!("Role {i}"), "", ""))
                .collect(),
        );
        index.apply(vec![
            ("e3".into(), None),
            (
                "e4".into(),
                Some(CatalogItem {
                    requestable: false,
                    ..item("e4", "Role 4", "", "")
                }),
            ),
        ]);
        let mut q = CatalogQuery {
            text: "role".into(),
            requestable: Some(true),
            page_size: 3,
            ..Default::default()
        };
        let mut seen = Vec::new();
        loop {
            let page = index.search(&q);
            assert_eq!(page.total_count, 8);
            seen.extend(page.items.into_iter().map(|i| i.id));
            match page.next {
                Some(next) => q.after = Some(next),
                None => break,
            }
        }
        assert_eq!(seen, ["e0", "e1", "e2", "e5", "e6", "e7", "e8", "e9"]);
    }
}
