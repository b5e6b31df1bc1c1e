//! `CatalogSearch`: the requestable catalog (apps and entitlements) and the
//! word index that answers `GET /catalog?query=`.
//!
//! The projection keeps, in its tree, one [`CatalogItem`] per app and per
//! entitlement (`i/<id>`), plus what it needs to recompute them when an app
//! changes (`a/<appId>`, `e/<entitlementId>`, `m/<appId>/<entitlementId>`).
//! The [`SearchIndex`] lives in memory beside the tree: it is loaded from the
//! `i/` keys when the tree is opened and follows every committed batch
//! ([`Projection::committed`]), so it is exactly as current as the tree and a
//! consistency token covers it too. Words map to roaring bitmaps of item
//! slots; a query is the intersection, over its words, of the union of the
//! bitmaps of every indexed word starting with that word, and of the filters'
//! bitmaps. The matches are split into ranking tiers (more bitmaps), and a
//! page is read tier by tier in name order, so its cost follows the page
//! size rather than the number of matches.
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
                tx.put_value(ent_key(&e.access_entitlement_id), &access);
                tx.put_value(app_key(&e.app_id), &app);
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
                tx.put_value(ent_key(&e.entitlement_id), &info);
                let mut m = member_prefix(&e.app_id);
                m.extend_from_slice(e.entitlement_id.as_bytes());
                tx.put(m, Vec::new());
                refresh_entitlement(tx, &e.app_id, &e.entitlement_id)?;
            }
            DomainEvent::AppEntitlementUpdated(e) => {
                if let Some(mut info) =
                    tx.get_value::<EntitlementInfo>(&ent_key(&e.entitlement_id))?
                {
                    info.fields = apply_update(&info.fields, e);
                    tx.put_value(ent_key(&e.entitlement_id), &info);
                    refresh_entitlement(tx, &e.app_id, &e.entitlement_id)?;
                }
            }
            DomainEvent::AppEntitlementDeleted(e) => {
                if let Some(mut info) =
                    tx.get_value::<EntitlementInfo>(&ent_key(&e.entitlement_id))?
                {
                    info.deleted = true;
                    tx.put_value(ent_key(&e.entitlement_id), &info);
                    refresh_entitlement(tx, &e.app_id, &e.entitlement_id)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn opened(&self, tree: &crate::store::Tree) -> Result<()> {
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
    crate::staged::decode_value(v)
        .map_err(|e| ProjectionError::Corrupt(format!("catalog item: {e}")))
}

fn change_app(tx: &mut Staged<'_>, app_id: &str, f: impl FnOnce(&mut AppInfo)) -> Result<()> {
    let Some(mut app) = tx.get_value::<AppInfo>(&app_key(app_id))? else {
        return Ok(());
    };
    f(&mut app);
    tx.put_value(app_key(app_id), &app);
    refresh_app(tx, app_id)
}

/// Recomputes the app's item and the items of all its entitlements.
fn refresh_app(tx: &mut Staged<'_>, app_id: &str) -> Result<()> {
    let Some(app) = tx.get_value::<AppInfo>(&app_key(app_id))? else {
        return Ok(());
    };
    let access = tx
        .get_value::<EntitlementInfo>(&ent_key(&app.access_entitlement_id))?
        .unwrap_or_default();
    tx.put_value(item_key(app_id), &app_item(app_id, &app, &access));
    for id in tx.keys_with_prefix(&member_prefix(app_id))? {
        let id = String::from_utf8_lossy(&id[member_prefix(app_id).len()..]).into_owned();
        if id != app.access_entitlement_id {
            refresh_entitlement(tx, app_id, &id)?;
        }
    }
    Ok(())
}

fn refresh_entitlement(tx: &mut Staged<'_>, app_id: &str, id: &str) -> Result<()> {
    let Some(app) = tx.get_value::<AppInfo>(&app_key(app_id))? else {
        return Ok(());
    };
    let Some(ent) = tx.get_value::<EntitlementInfo>(&ent_key(id))? else {
        return Ok(());
    };
    if ent.fields.system_builtin {
        tx.put_value(item_key(app_id), &app_item(app_id, &app, &ent));
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
    tx.put_value(item_key(id), &item);
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
    /// Words of the names, alias and slug, sorted ("whole word" matches rank
    /// above description-only or prefix matches).
    strong: Vec<String>,
    name_lower: String,
    alias_lower: String,
    all_words: Vec<String>,
}

/// Where an item stands in the order of results: tier, then name, then id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Rank<'a> {
    tier: u8,
    name: &'a str,
    id: &'a str,
}

impl Rank<'_> {
    /// The page token form: `tier \0 name \0 id`.
    fn encode(&self) -> String {
        format!("{}\0{}\0{}", self.tier, self.name, self.id)
    }

    fn decode(token: &str) -> Option<Rank<'_>> {
        let mut parts = token.splitn(3, '\0');
        Some(Rank {
            tier: parts.next()?.parse().ok()?,
            name: parts.next()?,
            id: parts.next()?,
        })
    }
}

/// Items ordered by name and id, for queries without text: their first page
/// is found without ranking every candidate.
type ByName = std::collections::BTreeSet<(String, String, u32)>;

#[derive(Default)]
struct Inner {
    slots: Vec<Option<Entry>>,
    free: Vec<u32>,
    by_id: HashMap<String, u32>,
    postings: BTreeMap<String, RoaringBitmap>,
    /// Whole words of names, alias and slug only (tier 2).
    strong_postings: HashMap<String, RoaringBitmap>,
    /// Lowercased aliases (tier 0).
    by_alias: HashMap<String, RoaringBitmap>,
    by_name: ByName,
    /// Filter bitmaps.
    all: RoaringBitmap,
    deleted: RoaringBitmap,
    requestable: RoaringBitmap,
    by_kind: HashMap<String, RoaringBitmap>,
    by_app: HashMap<String, RoaringBitmap>,
    by_risk: HashMap<String, RoaringBitmap>,
}

/// A tier with fewer members than this is sorted; a larger one is read by
/// walking the name order and keeping its members.
const RANK_ALL_BELOW: u64 = 4096;

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
    ///
    /// Each tier is a bitmap; a page is filled tier by tier, each in name
    /// order, so the cost is that of the page, not of every match.
    pub fn search(&self, q: &CatalogQuery) -> CatalogPage {
        let inner = self.inner.read().expect("index lock");
        let text = q.text.trim().to_lowercase();
        let tokens: Vec<String> = words(&text).collect();
        let candidates = inner.candidates(q, &tokens);
        let total_count = candidates.len();
        let tiers = inner.tiers(candidates, &text, &tokens);
        let after = q.after.as_deref().and_then(Rank::decode);
        let want = q.page_size + 1;
        let mut page: Vec<Rank<'_>> = Vec::with_capacity(want);
        for (tier, members) in tiers.iter().enumerate() {
            let tier = tier as u8;
            let from = match &after {
                Some(a) if a.tier > tier => continue,
                Some(a) if a.tier == tier => Some((a.name, a.id)),
                _ => None,
            };
            inner.in_name_order(members, from, want - page.len(), |name, id| {
                page.push(Rank { tier, name, id })
            });
            if page.len() == want {
                break;
            }
        }
        let more = page.len() > q.page_size;
        page.truncate(q.page_size);
        let next = if more {
            page.last().map(Rank::encode)
        } else {
            None
        };
        let items = page
            .iter()
            .filter_map(|r| inner.by_id.get(r.id))
            .filter_map(|slot| inner.slots[*slot as usize].as_ref().map(|e| e.item.clone()))
            .collect();
        CatalogPage {
            items,
            next,
            total_count,
        }
    }
}

impl Inner {
    /// Splits the matches into tiers: 0 exact alias, 1 name prefix, 2 every
    /// word a whole word of a name, alias or slug, 3 the rest (word prefixes,
    /// description). A query without text has a single tier.
    fn tiers(
        &self,
        candidates: RoaringBitmap,
        text: &str,
        tokens: &[String],
    ) -> [RoaringBitmap; 4] {
        if tokens.is_empty() {
            return [
                RoaringBitmap::new(),
                RoaringBitmap::new(),
                RoaringBitmap::new(),
                candidates,
            ];
        }
        let mut rest = candidates;
        let mut t0 = self.by_alias.get(text).cloned().unwrap_or_default();
        t0 &= &rest;
        rest -= &t0;
        let mut t1: RoaringBitmap = self
            .by_name
            .range((text.to_string(), String::new(), 0)..)
            .take_while(|(name, _, _)| name.starts_with(text))
            .map(|(_, _, slot)| *slot)
            .collect();
        t1 &= &rest;
        rest -= &t1;
        let mut t2 = rest.clone();
        for t in tokens {
            match self.strong_postings.get(t) {
                Some(bm) => t2 &= bm,
                None => t2.clear(),
            }
        }
        rest -= &t2;
        [t0, t1, t2, rest]
    }

    /// Calls `take(name, id)` for up to `n` members in (name, id) order,
    /// starting after `from`.
    fn in_name_order<'a>(
        &'a self,
        members: &RoaringBitmap,
        from: Option<(&str, &str)>,
        n: usize,
        mut take: impl FnMut(&'a str, &'a str),
    ) {
        if n == 0 || members.is_empty() {
            return;
        }
        let past = |name: &str, id: &str| from.is_none_or(|(fname, fid)| (name, id) > (fname, fid));
        if members.len() < RANK_ALL_BELOW {
            // Few members: sort them.
            let mut found: Vec<(&'a str, &'a str)> = members
                .iter()
                .filter_map(|slot| self.slots[slot as usize].as_ref())
                .map(|e| (e.name_lower.as_str(), e.item.id.as_str()))
                .filter(|(name, id)| past(name, id))
                .collect();
            found.sort_unstable();
            for (name, id) in found.into_iter().take(n) {
                take(name, id);
            }
            return;
        }
        // Many: walk the name order, keeping members.
        let start = from
            .map(|(name, id)| (name.to_string(), id.to_string(), 0u32))
            .unwrap_or_default();
        let mut taken = 0;
        for (name, id, slot) in self.by_name.range(start..) {
            if taken == n {
                break;
            }
            if members.contains(*slot) && past(name, id) {
                take(name, id);
                taken += 1;
            }
        }
    }

    /// The items passing the query's filters whose words match every token
    /// (as a whole word or a word prefix).
    fn candidates(&self, q: &CatalogQuery, tokens: &[String]) -> RoaringBitmap {
        let empty = RoaringBitmap::new();
        let mut c = self.all.clone();
        if !q.include_deleted {
            c -= &self.deleted;
        }
        match q.requestable {
            Some(true) => c &= &self.requestable,
            Some(false) => c -= &self.requestable,
            None => {}
        }
        for (map, key) in [
            (&self.by_kind, &q.kind),
            (&self.by_app, &q.app_id),
            (&self.by_risk, &q.risk_level_value_id),
        ] {
            if let Some(k) = key {
                c &= map.get(k).unwrap_or(&empty);
            }
        }
        for t in tokens {
            if c.is_empty() {
                break;
            }
            let mut matching = RoaringBitmap::new();
            for (_, bm) in self
                .postings
                .range::<str, _>((
                    std::ops::Bound::Included(t.as_str()),
                    std::ops::Bound::Unbounded,
                ))
                .take_while(|(w, _)| w.starts_with(t.as_str()))
            {
                matching |= bm;
            }
            c &= matching;
        }
        c
    }

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
        for w in &strong {
            self.strong_postings
                .entry(w.clone())
                .or_default()
                .insert(slot);
        }
        let alias_lower = item.alias.to_lowercase();
        if !alias_lower.is_empty() {
            self.by_alias
                .entry(alias_lower.clone())
                .or_default()
                .insert(slot);
        }
        self.all.insert(slot);
        if item.deleted {
            self.deleted.insert(slot);
        }
        if item.requestable {
            self.requestable.insert(slot);
        }
        self.by_kind
            .entry(item.kind.clone())
            .or_default()
            .insert(slot);
        self.by_app
            .entry(item.app_id.clone())
            .or_default()
            .insert(slot);
        if let Some(r) = &item.risk_level_value_id {
            self.by_risk.entry(r.clone()).or_default().insert(slot);
        }
        let name_lower = item.display_name.to_lowercase();
        self.by_name
            .insert((name_lower.clone(), item.id.clone(), slot));
        self.by_id.insert(item.id.clone(), slot);
        self.slots[slot as usize] = Some(Entry {
            name_lower,
            alias_lower,
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
            let unindex = |map: &mut HashMap<String, RoaringBitmap>, key: &str| {
                if let Some(bm) = map.get_mut(key) {
                    bm.remove(slot);
                    if bm.is_empty() {
                        map.remove(key);
                    }
                }
            };
            for w in &e.strong {
                unindex(&mut self.strong_postings, w);
            }
            unindex(&mut self.by_alias, &e.alias_lower);
            unindex(&mut self.by_kind, &e.item.kind);
            unindex(&mut self.by_app, &e.item.app_id);
            if let Some(r) = &e.item.risk_level_value_id {
                unindex(&mut self.by_risk, r);
            }
            self.by_name.remove(&(e.name_lower, e.item.id, slot));
        }
        self.all.remove(slot);
        self.deleted.remove(slot);
        self.requestable.remove(slot);
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

    #[test]
    fn browsing_a_large_catalog_walks_the_name_order() {
        let index = SearchIndex::default();
        let n = RANK_ALL_BELOW as usize + 1000;
        index.replace_all(
            (0..n)
                .map(|i| CatalogItem {
                    requestable: i % 3 != 0,
                    ..item(&format!("e{i:05}"), &format!("Role {:05}", n - i), "", "")
                })
                .collect(),
        );
        let mut q = CatalogQuery {
            requestable: Some(true),
            page_size: 1000,
            ..Default::default()
        };
        let mut seen = Vec::new();
        loop {
            let page = index.search(&q);
            assert_eq!(page.total_count as usize, n - n.div_ceil(3));
            seen.extend(page.items.into_iter().map(|i| i.display_name));
            match page.next {
                Some(next) => q.after = Some(next),
                None => break,
            }
        }
        let mut expected: Vec<String> = (0..n)
            .filter(|i| i % 3 != 0)
            .map(|i| format!("Role {:05}", n - i))
            .collect();
        expected.sort();
        assert_eq!(seen, expected);
    }
}
