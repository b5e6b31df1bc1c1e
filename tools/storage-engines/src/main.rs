//! Per-key write and read costs of sled 0.34 (the embedded default), fjall 2
//! and redb 2 under the event log's and the read models' access patterns, on
//! one machine in one run; and a demonstration that sled 0.34's atomic
//! batches take a process-wide lock.
//!
//! ```sh
//! cargo run --release --manifest-path tools/storage-engines/Cargo.toml -- sled
//! cargo run --release --manifest-path tools/storage-engines/Cargo.toml -- fjall
//! cargo run --release --manifest-path tools/storage-engines/Cargo.toml -- redb
//! cargo run --release --manifest-path tools/storage-engines/Cargo.toml -- sled-lock
//! ```
//!
//! Not part of the product: it informs the choice of the embedded engine.
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

type Kvs = [(Vec<u8>, Vec<u8>)];

trait Engine: Send + Sync {
    /// Writes `kvs` atomically; `durable` waits until they are on disk.
    fn batch(&self, kvs: &Kvs, durable: bool);
    /// Plain (not atomic) inserts, as a rebuild writes.
    fn plain(&self, kvs: &Kvs);
    /// Point reads; answers how many keys were found.
    fn get(&self, keys: &[Vec<u8>]) -> usize;
    /// Reads every key and value under `prefix`; answers how many.
    fn scan(&self, prefix: &[u8]) -> usize;
}

struct Sled(sled::Tree, sled::Db);

impl Engine for Sled {
    fn batch(&self, kvs: &Kvs, durable: bool) {
        let mut b = sled::Batch::default();
        for (k, v) in kvs {
            b.insert(k.as_slice(), v.as_slice());
        }
        self.0.apply_batch(b).unwrap();
        if durable {
            // What the embedded log does per group commit (sled uses
            // sync_file_range here, not fsync).
            self.1.flush().unwrap();
        }
    }
    fn plain(&self, kvs: &Kvs) {
        for (k, v) in kvs {
            self.0.insert(k.as_slice(), v.as_slice()).unwrap();
        }
    }
    fn get(&self, keys: &[Vec<u8>]) -> usize {
        keys.iter()
            .filter(|k| self.0.get(k).unwrap().is_some())
            .count()
    }
    fn scan(&self, prefix: &[u8]) -> usize {
        self.0
            .scan_prefix(prefix)
            .map(|kv| kv.unwrap().1.len().min(1))
            .sum()
    }
}

struct Fjall(fjall::Keyspace, fjall::PartitionHandle);

impl Engine for Fjall {
    fn batch(&self, kvs: &Kvs, durable: bool) {
        let mut b = self.0.batch();
        for (k, v) in kvs {
            b.insert(&self.1, k.as_slice(), v.as_slice());
        }
        b.commit().unwrap();
        if durable {
            // fdatasync: stronger than sled's flush.
            self.0.persist(fjall::PersistMode::SyncData).unwrap();
        }
    }
    fn plain(&self, kvs: &Kvs) {
        for (k, v) in kvs {
            self.1.insert(k.as_slice(), v.as_slice()).unwrap();
        }
    }
    fn get(&self, keys: &[Vec<u8>]) -> usize {
        keys.iter()
            .filter(|k| self.1.get(k).unwrap().is_some())
            .count()
    }
    fn scan(&self, prefix: &[u8]) -> usize {
        self.1
            .prefix(prefix)
            .map(|kv| kv.unwrap().1.len().min(1))
            .sum()
    }
}

const TABLE: redb::TableDefinition<&[u8], &[u8]> = redb::TableDefinition::new("t");

struct Redb(redb::Database);

impl Redb {
    fn write(&self, kvs: &Kvs, durability: redb::Durability) {
        let mut tx = self.0.begin_write().unwrap();
        tx.set_durability(durability);
        {
            let mut t = tx.open_table(TABLE).unwrap();
            for (k, v) in kvs {
                t.insert(k.as_slice(), v.as_slice()).unwrap();
            }
        }
        tx.commit().unwrap();
    }
}

impl Engine for Redb {
    fn batch(&self, kvs: &Kvs, durable: bool) {
        let d = if durable {
            redb::Durability::Immediate
        } else {
            redb::Durability::None
        };
        self.write(kvs, d);
    }
    fn plain(&self, kvs: &Kvs) {
        self.write(kvs, redb::Durability::None)
    }
    fn get(&self, keys: &[Vec<u8>]) -> usize {
        let tx = self.0.begin_read().unwrap();
        let t = tx.open_table(TABLE).unwrap();
        keys.iter()
            .filter(|k| t.get(k.as_slice()).unwrap().is_some())
            .count()
    }
    fn scan(&self, prefix: &[u8]) -> usize {
        let tx = self.0.begin_read().unwrap();
        let t = tx.open_table(TABLE).unwrap();
        let mut end = prefix.to_vec();
        *end.last_mut().unwrap() += 1;
        t.range(prefix..end.as_slice())
            .unwrap()
            .map(|kv| kv.unwrap().1.value().len().min(1))
            .sum()
    }
}

fn open(name: &str, dir: &std::path::Path) -> Box<dyn Engine> {
    match name {
        "sled" => {
            // The embedded default's settings.
            let db = sled::Config::new()
                .path(dir)
                .cache_capacity(256 << 20)
                .open()
                .unwrap();
            Box::new(Sled(db.open_tree("t").unwrap(), db))
        }
        "fjall" => {
            let ks = fjall::Config::new(dir).open().unwrap();
            let p = ks.open_partition("t", Default::default()).unwrap();
            Box::new(Fjall(ks, p))
        }
        "redb" => Box::new(Redb(redb::Database::create(dir.join("db")).unwrap())),
        other => panic!("unknown engine {other:?}: sled, fjall or redb, optionally with -lock"),
    }
}

/// xorshift: the same keys in every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// A time-ordered id like a UUID v7: 6 bytes of sequence, 10 random.
fn v7(seq: u64, rng: &mut Rng) -> Vec<u8> {
    let mut k = seq.to_be_bytes()[2..].to_vec();
    k.extend_from_slice(&rng.next().to_be_bytes());
    k.extend_from_slice(&rng.next().to_be_bytes()[..2]);
    k
}

const CELL: Duration = Duration::from_secs(3);

fn main() {
    let engine = std::env::args().nth(1).unwrap_or_else(|| "sled".into());
    if let Some(engine) = engine.strip_suffix("-lock") {
        return lock(engine);
    }
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    log_writer(&engine, &mut rng);
    read_models(&engine, &mut rng);
    for threads in [1usize, 2] {
        rebuild(&engine, threads);
    }
}

/// The log writer: a group commit of 3 appends of 3 events each (about one
/// workflow's worth). Per event the event (400 bytes), a stream-index and an
/// id-index key; per append the stream head; then the group is made durable.
/// Afterwards, one scan of every event (what `read_all` does).
fn log_writer(engine: &str, rng: &mut Rng) {
    let dir = tempfile::tempdir().unwrap();
    let e = open(engine, dir.path());
    let (mut pos, mut keys, mut groups) = (0u64, 0u64, 0u64);
    let start = Instant::now();
    while start.elapsed() < CELL {
        let mut kvs = Vec::new();
        for _ in 0..3 {
            let stream = format!("s/AccessRequest-{:016x}/", rng.next());
            for version in 1..=3u64 {
                pos += 1;
                let mut ek = b"e".to_vec();
                ek.extend_from_slice(&pos.to_be_bytes());
                kvs.push((ek, vec![7u8; 400]));
                let mut sk = stream.clone().into_bytes();
                sk.extend_from_slice(&version.to_be_bytes());
                kvs.push((sk, pos.to_be_bytes().to_vec()));
                let mut ik = b"i".to_vec();
                ik.extend(v7(pos, rng));
                kvs.push((ik, pos.to_be_bytes().to_vec()));
            }
            kvs.push((
                format!("h/{stream}").into_bytes(),
                3u64.to_be_bytes().to_vec(),
            ));
        }
        keys += kvs.len() as u64;
        groups += 1;
        e.batch(&kvs, true);
    }
    let s = start.elapsed().as_secs_f64();
    println!(
        "{engine:6} log writer: {:7.0} events/s, {:5.0} group commits/s, {:5.2} us per key",
        pos as f64 / s,
        groups as f64 / s,
        s * 1e6 / keys as f64
    );
    let start = Instant::now();
    let n = e.scan(b"e");
    assert_eq!(n as u64, pos);
    println!(
        "{engine:6} log read_all: {:8.0} events/s",
        n as f64 / start.elapsed().as_secs_f64()
    );
}

/// The live read models: atomic batches of 500 keys (a runner batch of about
/// 50 events, about 10 keys each), time-ordered ids, 500-byte values, half
/// of them rewrites of recent keys, no flush. Then point reads of recent keys.
fn read_models(engine: &str, rng: &mut Rng) {
    let dir = tempfile::tempdir().unwrap();
    let e = open(engine, dir.path());
    let key = |id: u64| v7(id, &mut Rng(id | 1));
    let (mut seq, mut keys) = (0u64, 0u64);
    let start = Instant::now();
    while start.elapsed() < CELL {
        let kvs: Vec<_> = (0..500)
            .map(|i| {
                seq += 1;
                let id = if i % 2 == 0 {
                    seq
                } else {
                    seq.saturating_sub(rng.next() % 2000)
                };
                (key(id), vec![3u8; 500])
            })
            .collect();
        keys += kvs.len() as u64;
        e.batch(&kvs, false);
    }
    let s = start.elapsed().as_secs_f64();
    println!(
        "{engine:6} read-model batches: {:7.0} keys/s, {:5.2} us per key",
        keys as f64 / s,
        s * 1e6 / keys as f64
    );
    let probe: Vec<Vec<u8>> = (0..200_000)
        .map(|_| key(seq - rng.next() % seq.min(50_000)))
        .collect();
    let start = Instant::now();
    assert!(e.get(&probe) > 0);
    println!(
        "{engine:6} read-model gets: {:5.2} us per get",
        start.elapsed().as_secs_f64() * 1e6 / probe.len() as f64
    );
}

/// A rebuild: 144,000 plain inserts of 300-byte values in chunks of 1,000,
/// from one thread or split over two.
fn rebuild(engine: &str, threads: usize) {
    let dir = tempfile::tempdir().unwrap();
    let e = open(engine, dir.path());
    let start = Instant::now();
    std::thread::scope(|scope| {
        for t in 0..threads {
            let e = &e;
            scope.spawn(move || {
                let mut rng = Rng(t as u64 + 11);
                for chunk in 0..(144 / threads) {
                    let kvs: Vec<_> = (0..1000)
                        .map(|i| {
                            let mut k = vec![t as u8];
                            k.extend(v7((chunk * 1000 + i) as u64, &mut rng));
                            (k, vec![5u8; 300])
                        })
                        .collect();
                    e.plain(&kvs);
                }
            });
        }
    });
    let s = start.elapsed().as_secs_f64();
    println!(
        "{engine:6} rebuild on {threads} thread(s): {:7.0} keys/s, {:5.2} us per key",
        144_000.0 / s,
        s * 1e6 / 144_000.0
    );
}

/// sled 0.34 guards every operation with one process-wide lock once any
/// `apply_batch` (or transaction) has run, so a reader of one database waits
/// for a batch written to another. Two databases of `engine`, as `iga serve`
/// has two (the log and the read models): one thread reads the first while
/// another writes the second, with plain inserts and then with atomic
/// batches (plain inserts first: in sled the first batch switches the
/// process to the lock for good).
fn lock(engine: &str) {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let reads = open(engine, a.path());
    let writes = open(engine, b.path());
    let key = |i: u64| i.to_be_bytes().to_vec();
    for chunk in 0..100u64 {
        let kvs: Vec<_> = (0..1000)
            .map(|i| (key(chunk * 1000 + i), vec![1u8; 100]))
            .collect();
        reads.plain(&kvs);
    }
    for batched in [false, true] {
        let stop = AtomicBool::new(false);
        let read = AtomicU64::new(0);
        let written = AtomicU64::new(0);
        std::thread::scope(|scope| {
            scope.spawn(|| {
                let mut rng = Rng(7);
                while !stop.load(Ordering::Relaxed) {
                    let probe: Vec<_> = (0..100).map(|_| key(rng.next() % 100_000)).collect();
                    assert_eq!(reads.get(&probe), 100);
                    read.fetch_add(100, Ordering::Relaxed);
                }
            });
            scope.spawn(|| {
                let mut rng = Rng(9);
                while !stop.load(Ordering::Relaxed) {
                    let kvs: Vec<_> = (0..100)
                        .map(|_| (v7(rng.next(), &mut rng), vec![2u8; 300]))
                        .collect();
                    if batched {
                        writes.batch(&kvs, false);
                    } else {
                        writes.plain(&kvs);
                    }
                    written.fetch_add(100, Ordering::Relaxed);
                }
            });
            std::thread::sleep(CELL);
            stop.store(true, Ordering::Relaxed);
        });
        let s = CELL.as_secs_f64();
        println!(
            "{engine:6} writer using {:13}: reads of the other database {:8.0}/s, writes {:7.0} keys/s",
            if batched { "atomic batches" } else { "plain inserts" },
            read.load(Ordering::Relaxed) as f64 / s,
            written.load(Ordering::Relaxed) as f64 / s
        );
    }
}
