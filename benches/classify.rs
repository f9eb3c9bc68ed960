//! Classifier and digest over a realistic corpus: Django ORM queries and a 1000-item IN list.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use rwproxy::routing::{Dialect, classify};

const DJANGO: &[&str] = &[
    "SELECT `auth_user`.`id`, `auth_user`.`password`, `auth_user`.`last_login`, `auth_user`.`is_superuser`, `auth_user`.`username` FROM `auth_user` WHERE `auth_user`.`id` = 42 LIMIT 21",
    "SELECT `notes_note`.`id`, `notes_note`.`title` FROM `notes_note` INNER JOIN `auth_user` ON (`notes_note`.`owner_id` = `auth_user`.`id`) WHERE `auth_user`.`username` = 'bob' ORDER BY `notes_note`.`created` DESC",
    "INSERT INTO `notes_note` (`title`, `body`, `owner_id`, `created`) VALUES ('a title', 'some body text', 1, '2026-11-27 12:00:00.000000')",
    "UPDATE `auth_user` SET `last_login` = '2026-11-27 12:00:00.000000' WHERE `auth_user`.`id` = 1",
    "SELECT `notes_note`.`id` FROM `notes_note` WHERE `notes_note`.`id` = 1 FOR UPDATE",
    "SELECT COUNT(*) AS `__count` FROM `notes_note` WHERE `notes_note`.`owner_id` = 3",
    "SET SQL_AUTO_IS_NULL = 0, TX_ISOLATION = 'read-committed'",
    "SAVEPOINT `s140_x1`",
];

fn benches(c: &mut Criterion) {
    let mut g = c.benchmark_group("classify");
    g.bench_function("typical_orm_select", |b| {
        b.iter(|| classify(black_box(DJANGO[0].as_bytes()), Dialect::default()))
    });
    g.bench_function("django_corpus_per_query", |b| {
        b.iter(|| {
            for q in DJANGO {
                black_box(classify(black_box(q.as_bytes()), Dialect::default()));
            }
        })
    });
    let ids: Vec<String> = (0..1000).map(|i| (i * 7919).to_string()).collect();
    let big =
        format!("SELECT `notes_note`.`id` FROM `notes_note` WHERE `notes_note`.`id` IN ({})", ids.join(", "));
    g.bench_function("in_list_1000", |b| b.iter(|| classify(black_box(big.as_bytes()), Dialect::default())));
    g.finish();
}

criterion_group!(classify_benches, benches);
criterion_main!(classify_benches);
