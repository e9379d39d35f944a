//! Allocation-free `HeaderValue`s for the numbers and ids each response carries.
//!
//! `age`, `cache-control: private, max-age=N` and `x-request-id` change per response, and
//! `HeaderValue::from(u64)` allocates each time. Instead each thread formats into a shared
//! 16 KiB `BytesMut` and freezes the slice: `HeaderValue::from_maybe_shared` takes a `Bytes`
//! without copying, so the cost is one allocation per ~500 values instead of one per value.
//!
//! `age` and `max-age` below [`TABLED`] seconds (the first 68 minutes of an entry's life, all
//! of it with hour-long URLs) come from tables built on first use instead: cloning a
//! `HeaderValue` over static bytes is a copy of four words, where formatting one, slicing the
//! arena and validating the bytes cost ≈ 150–250 instructions per value on every cache hit
//! (benches/README.md, "Cost per request"). The two tables hold 2 × 4,096 values, ≈ 420 KiB,
//! made once per process.

use std::cell::{Cell, RefCell};
use std::sync::LazyLock;

use bytes::{BufMut, Bytes, BytesMut};
use http::HeaderValue;

const CHUNK: usize = 16 * 1024;

thread_local! {
    static ARENA: RefCell<BytesMut> = RefCell::new(BytesMut::new());
    static NEXT_ID: Cell<u64> = Cell::new(rand::random::<u64>());
}

fn format_into(f: impl FnOnce(&mut BytesMut)) -> Bytes {
    ARENA.with(|a| {
        let mut a = a.borrow_mut();
        if a.capacity() - a.len() < 64 {
            *a = BytesMut::with_capacity(CHUNK);
        }
        f(&mut a);
        a.split().freeze()
    })
}

fn to_value(bytes: Bytes) -> HeaderValue {
    // Only ASCII digits, letters and ", =-" are ever written, all valid in a header value.
    HeaderValue::from_maybe_shared(bytes).unwrap_or_else(|_| HeaderValue::from_static("0"))
}

/// Up to 20 digits, or `prefix` + 20 digits, formatted on the stack and copied once.
struct Digits {
    buf: [u8; 40],
    start: usize,
}

impl Digits {
    fn as_bytes(&self) -> &[u8] {
        &self.buf[self.start..]
    }
}

/// `prefix` (at most 20 bytes) followed by `n` in decimal, written right to left.
fn decimal_after(prefix: &[u8], mut n: u64) -> Digits {
    let mut buf = [0u8; 40];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let start = i.saturating_sub(prefix.len());
    buf[start..i].copy_from_slice(&prefix[..i - start]);
    Digits { buf, start }
}

/// How many values (0, 1, … `TABLED` − 1) each table holds.
pub const TABLED: usize = 4096;

const MAX_AGE_PREFIX: &[u8] = b"private, max-age=";

static DECIMALS: LazyLock<Box<[HeaderValue]>> = LazyLock::new(|| table(b""));
static MAX_AGES: LazyLock<Box<[HeaderValue]>> = LazyLock::new(|| table(MAX_AGE_PREFIX));

/// `prefix` + `n` for every `n` below [`TABLED`], over one leaked buffer (the tables live as
/// long as the process, so their bytes can be `'static` and cloning a value copies no bytes
/// and touches no refcount).
fn table(prefix: &[u8]) -> Box<[HeaderValue]> {
    let mut text = Vec::with_capacity(TABLED * (prefix.len() + 4));
    let mut ends = Vec::with_capacity(TABLED);
    for n in 0..TABLED as u64 {
        text.extend_from_slice(decimal_after(prefix, n).as_bytes());
        ends.push(text.len());
    }
    let text: &'static [u8] = Box::leak(text.into_boxed_slice());
    let mut start = 0;
    ends.into_iter()
        .map(|end| {
            let value = to_value(Bytes::from_static(&text[start..end]));
            start = end;
            value
        })
        .collect()
}

/// Entry `n` of `table`, or `prefix` + `n` formatted in the arena past its end.
fn tabled(table: &[HeaderValue], prefix: &[u8], n: u64) -> HeaderValue {
    match usize::try_from(n).ok().and_then(|i| table.get(i)) {
        Some(v) => v.clone(),
        None => {
            let d = decimal_after(prefix, n);
            to_value(format_into(|b| b.put_slice(d.as_bytes())))
        }
    }
}

/// A decimal number, e.g. for `age` or `retry-after`.
pub fn decimal(n: u64) -> HeaderValue {
    tabled(&DECIMALS, b"", n)
}

/// `private, max-age=N`: redirects are per-user and must never outlive their URL.
pub fn private_max_age(n: u64) -> HeaderValue {
    tabled(&MAX_AGES, MAX_AGE_PREFIX, n)
}

/// A fresh request id for responses hydrant builds itself (`hyd-` + 16 hex digits).
pub fn request_id() -> HeaderValue {
    let id = NEXT_ID.with(|c| {
        // splitmix64: cheap, well-spread, unique per thread until it wraps.
        let x = c.get().wrapping_add(0x9E37_79B9_7F4A_7C15);
        c.set(x);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    });
    let v = hyd_hex(id);
    to_value(format_into(|b| b.put_slice(&v)))
}

/// `hyd-` + `n` as 16 lowercase hex digits, a byte (two digits) at a time.
fn hyd_hex(n: u64) -> [u8; 20] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = *b"hyd-0000000000000000";
    for (i, byte) in n.to_be_bytes().iter().enumerate() {
        out[4 + 2 * i] = HEX[usize::from(byte >> 4)];
        out[5 + 2 * i] = HEX[usize::from(byte & 0xf)];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values() {
        assert_eq!(decimal(0), "0");
        assert_eq!(decimal(1234567890), "1234567890");
        assert_eq!(decimal(u64::MAX), u64::MAX.to_string().as_str());
        assert_eq!(private_max_age(59), "private, max-age=59");
        let a = request_id();
        let b = request_id();
        assert_ne!(a, b);
        assert_eq!(a.len(), 20);
        assert!(a.to_str().unwrap().starts_with("hyd-"));
        assert_eq!(&hyd_hex(0x0123_4567_89ab_cdef), b"hyd-0123456789abcdef");
        assert_eq!(private_max_age(0), "private, max-age=0");
        assert_eq!(
            private_max_age(u64::MAX),
            format!("private, max-age={}", u64::MAX).as_str()
        );
    }

    #[test]
    fn many_values_cross_chunks() {
        // Past the table every value is formatted in the arena, across several chunks.
        let from = TABLED as u64 - 10;
        let vals: Vec<_> = (from..from + 5000).map(decimal).collect();
        for (i, v) in (from..).zip(&vals) {
            assert_eq!(v.to_str().unwrap(), i.to_string());
        }
    }

    #[test]
    fn tabled_and_formatted_values_agree_at_the_edge() {
        for n in [
            0,
            1,
            9,
            10,
            59,
            3599,
            TABLED as u64 - 1,
            TABLED as u64,
            86_400,
        ] {
            assert_eq!(decimal(n), n.to_string().as_str());
            assert_eq!(private_max_age(n), format!("private, max-age={n}").as_str());
        }
        // Every table entry, both tables.
        for (n, (d, m)) in DECIMALS.iter().zip(MAX_AGES.iter()).enumerate() {
            assert_eq!(d, n.to_string().as_str());
            assert_eq!(m, format!("private, max-age={n}").as_str());
        }
        assert_eq!((DECIMALS.len(), MAX_AGES.len()), (TABLED, TABLED));
    }
}
