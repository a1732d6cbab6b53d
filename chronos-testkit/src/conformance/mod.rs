//! The backend conformance suite: one set of cases every backend must pass.
//!
//! Each case is a public async function taking a fresh [`Harness`] (the stores under test).
//! A backend crate runs them all with one line:
//!
//! ```
//! async fn harness() -> chronos_testkit::conformance::Harness {
//!     // Build the stores under test here; this example uses the in-memory ones.
//!     chronos_testkit::memory_harness().await
//! }
//! chronos_testkit::conformance_suite!(harness);
//! # fn main() {}
//! ```
//!
//! which expands to one `#[test]` per case (each on its own multi-threaded runtime). Cases use
//! collection names with a random suffix, so a shared server needs no cleanup between them.

mod aggregates;
mod batch;
mod chain;
mod concurrency;
mod contracts;
mod diff;
mod documents;
mod erase;
mod faults;
mod feed;
mod history;
mod idempotency;
mod pipeline;
mod query;
mod records;
mod restore;
mod retention;
mod robustness;
mod storage;
mod sweeping;
mod verify;

use std::future::Future;
use std::sync::Arc;

use chronos_core::{Collection, CollectionConfig, DocumentStore, Engine, ItemId, Stores};

pub use aggregates::*;
pub use batch::*;
pub use chain::*;
pub use concurrency::*;
pub use contracts::*;
pub use diff::*;
pub use documents::*;
pub use erase::*;
pub use faults::*;
pub use feed::*;
pub use history::*;
pub use idempotency::*;
pub use pipeline::*;
pub use query::*;
pub use records::*;
pub use restore::*;
pub use retention::*;
pub use robustness::*;
pub use storage::*;
pub use sweeping::*;
pub use verify::*;

/// The stores a case runs against.
#[derive(Debug, Clone)]
pub struct Harness {
    /// Index, blob and lock stores.
    pub stores: Stores,
    /// The document store.
    pub docs: Arc<dyn DocumentStore>,
}

impl Harness {
    /// An engine over the harness's stores.
    pub fn engine(&self) -> Engine {
        Engine::new(self.stores.clone())
    }
    /// `base` plus a random suffix: a collection name no other case uses.
    pub fn unique(base: &str) -> String {
        let id = ItemId::generate().to_string();
        format!("{base}_{}", &id[16..])
    }
    /// Opens a collection with a unique name derived from `config.name`.
    pub async fn collection(&self, mut config: CollectionConfig) -> Collection {
        config.name = Self::unique(&config.name);
        self.engine()
            .collection(config)
            .await
            .expect("open collection")
    }
    /// Opens a default collection with a unique name.
    pub async fn default_collection(&self, base: &str) -> Collection {
        self.collection(CollectionConfig::new(base)).await
    }
}

/// Runs one case: builds a multi-threaded runtime, makes a harness, awaits the case.
pub fn run<F, FFut, C, CFut>(factory: F, case: C)
where
    F: FnOnce() -> FFut,
    FFut: Future<Output = Harness>,
    C: FnOnce(Harness) -> CFut,
    CFut: Future<Output = ()>,
{
    runtime().block_on(async move {
        let h = factory().await;
        case(h).await;
    });
}

/// The runtime each case runs on: multi-threaded, two workers.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Runs a case that needs two independent databases of the backend: two harnesses from
/// `factory`.
pub fn run_pair<F, FFut, C, CFut>(factory: F, case: C)
where
    F: Fn() -> FFut,
    FFut: Future<Output = Harness>,
    C: FnOnce(Harness, Harness) -> CFut,
    CFut: Future<Output = ()>,
{
    runtime().block_on(async move {
        let a = factory().await;
        let b = factory().await;
        case(a, b).await;
    });
}

/// Expands to one `#[test]` per conformance case, each with a fresh harness from `$factory`
/// (an `async fn() -> Harness`).
#[macro_export]
macro_rules! conformance_suite {
    ($factory:path) => {
        $crate::conformance_suite!(@cases $factory;
            create_then_get_latest,
            create_rejects_invalid_payloads,
            create_with_explicit_id,
            lineage_from_parent_and_origin,
            typed_access_roundtrips,
            update_replaces_data_and_keeps_lineage,
            writes_to_missing_or_deleted_records_fail,
            stale_expected_ov_conflicts_and_changes_nothing,
            logical_delete_reads,
            hard_delete_keeps_history,
            enrich_merges_and_tracks_functions,
            versioning_off_keeps_only_latest,
            committed_versions_are_immutable,
            ovs_are_dense_and_at_increases,
            cvs_are_unique_and_follow_commit_order,
            get_as_of_returns_version_current_at_instant,
            history_pages_in_order,
            corrupted_payload_is_an_error_naming_its_key,
            sweep_removes_only_unreferenced_blobs,
            dev_shadow_serves_latest_reads,
            blob_prefix_keeps_shared_buckets_apart,
            compressed_payloads_roundtrip,
            base64_props_roundtrip,
            update_reads_no_payload,
            list_filters_sorts_and_pages,
            list_validates_inputs,
            list_sees_latest_metadata_only,
            collections_are_isolated,
            collection_names_are_case_sensitive,
            hostile_filters_get_clear_errors_or_work,
            restore_object_by_ov_and_time,
            restore_collection_returns_to_target,
            restore_collection_is_exclusive,
            restore_collection_survives_its_holder_dying,
            concurrent_updates_one_record_lose_nothing,
            concurrent_enrichments_keep_every_field,
            writers_of_one_record_take_turns_in_process,
            concurrent_writers_get_unique_cvs,
            two_engines_share_one_store,
            lost_races_leave_no_payload,
            index_commit_contract,
            index_precommit_contract,
            index_ping_contract,
            blob_store_contract,
            lock_contract,
            document_store_contract,
            document_conditional_updates_are_compare_and_set,
            document_bulk_deletes_and_layouts,
            document_sorts_follow_the_canonical_order,
            injected_faults_never_lose_or_expose_writes,
            database_id_is_stable,
            sweep_beside_writers_loses_no_acknowledged_write,
            late_attempts_do_not_commit,
            deep_payloads_are_rejected,
            damaged_record_never_bricks_a_page,
            oversized_payloads_are_rejected,
            conflict_causes_are_distinct,
            commit_observer_sees_each_commit_once,
            diff_patches_turn_one_version_into_another,
            change_feed_pages_every_version_once,
            change_feed_is_gap_free_under_out_of_order_commits,
            change_feed_reports_pruned_cursors,
            aggregates_match_a_brute_force,
            index_prune_contract,
            retention_prunes_old_versions_and_their_payloads,
            retention_validates_its_policy,
            retention_keeps_property_blobs_kept_versions_use,
            retention_keeps_ten_of_a_thousand_versions,
            index_scrub_contract,
            erase_removes_every_payload_and_keeps_history,
            erase_resumes_until_every_store_confirmed,
            verify_finds_and_locates_damage,
            verify_repair_rebuilds_heads_from_the_log,
            index_scan_versions_contract,
            index_seal_contract,
            chains_link_every_version_and_survive_erase,
            index_commit_many_contract,
            create_many_reports_each_item,
            update_many_reports_each_item,
            find_committed_recognises_keyed_writes,
            update_many_beside_writers_loses_nothing,
        );
        $crate::conformance_suite!(@pairs $factory;
            sweeps_spare_other_databases_in_one_bucket,
        );
    };
    (@pairs $factory:path; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                $crate::conformance::run_pair($factory, $crate::conformance::$case);
            }
        )*
    };
    (@cases $factory:path; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                $crate::conformance::run($factory, $crate::conformance::$case);
            }
        )*
    };
}

/// The grace period of [`sweeper`] handles: short enough to wait out in a test.
pub(crate) const QUICK_GRACE: std::time::Duration = std::time::Duration::from_millis(20);

/// A second handle on `c`'s collection whose sweep accepts [`QUICK_GRACE`] (a 20 ms write
/// deadline, no clock skew: right only while nothing writes through it and every writer
/// shares this clock). Writes keep going through `c` with its own deadline.
pub(crate) async fn sweeper(h: &Harness, c: &Collection) -> Collection {
    let cfg = c
        .config()
        .clone()
        .write_deadline(QUICK_GRACE)
        .clock_skew(std::time::Duration::ZERO);
    h.engine().collection(cfg).await.expect("open sweeper")
}

/// Waits out [`QUICK_GRACE`], then sweeps through a [`sweeper`] of `c`.
pub(crate) async fn sweep_now(h: &Harness, c: &Collection) -> chronos_core::SweepReport {
    let s = sweeper(h, c).await;
    tokio::time::sleep(QUICK_GRACE * 2).await;
    s.sweep(QUICK_GRACE).await.expect("sweep")
}

/// The key of a blob planted under `c` at `<prefix><coll>/<dir>/` as if an attempt of
/// database `owner` that started at `started_ms` had written it:
/// `<stem>-<owner>-<started_ms>-<tag><ext>`.
pub(crate) fn planted_key(
    c: &Collection,
    owner: &str,
    started_ms: i64,
    dir: &str,
    stem: &str,
    ext: &str,
) -> String {
    let tag = ItemId::generate().to_string();
    format!(
        "{}{}/{dir}/{stem}-{owner}-{started_ms}-{}{ext}",
        c.config().blob_prefix,
        c.name(),
        &tag[12..]
    )
}

/// Every blob key stored under a collection's prefix.
pub(crate) async fn blob_keys(h: &Harness, c: &Collection) -> Vec<String> {
    let prefix = format!("{}{}/", c.config().blob_prefix, c.name());
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = h
            .stores
            .blob
            .list(&prefix, after.as_deref(), 100)
            .await
            .expect("list blobs");
        let Some(last) = page.last() else { break };
        after = Some(last.key.clone());
        out.extend(page.into_iter().map(|b| b.key));
    }
    out
}

/// The user data of a record as a JSON value.
pub(crate) fn data(r: &chronos_core::Record) -> serde_json::Value {
    serde_json::Value::Object(r.data.clone())
}

/// The record's full history (all pages).
pub(crate) async fn full_history(c: &Collection, id: ItemId) -> Vec<chronos_core::VersionEntry> {
    let mut out = Vec::new();
    let mut opts = chronos_core::HistoryOptions::default();
    loop {
        let page = c.history(id, opts.clone()).await.expect("history");
        out.extend(page.versions);
        match page.next_after_ov {
            Some(a) => opts.after_ov = Some(a),
            None => return out,
        }
    }
}
