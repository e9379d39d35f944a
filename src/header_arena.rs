//! Allocation-free `HeaderValue`s for the numbers and ids each response carries.
//!
//! `age`, `cache-control: private, max-age=N` and `x-request-id` change per response, and
//! `HeaderValue::from(u64)` allocates each time. Instead each thread formats into a shared
//! 16 KiB `BytesMut` and freezes the slice: `HeaderValue::from_maybe_shared` takes a `Bytes`
//! without copying, so the cost is one allocation per ~500 values instead of one per value.

use std::cell::{Cell, RefCell};

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

fn put_decimal(buf: &mut BytesMut, n: u64) {
    let mut tmp = itoa_buf(n);
    buf.put_slice(tmp.as_bytes_mut());
}

struct Digits {
    buf: [u8; 20],
    start: usize,
}

impl Digits {
    fn as_bytes_mut(&mut self) -> &[u8] {
        &self.buf[self.start..]
    }
}

fn itoa_buf(mut n: u64) -> Digits {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    Digits { buf, start: i }
}

/// A decimal number, e.g. for `age` or `retry-after`.
pub fn decimal(n: u64) -> HeaderValue {
    to_value(format_into(|b| put_decimal(b, n)))
}

/// `private, max-age=N`: redirects are per-user and must never outlive their URL.
pub fn private_max_age(n: u64) -> HeaderValue {
    to_value(format_into(|b| {
        b.put_slice(b"private, max-age=");
        put_decimal(b, n);
    }))
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
    to_value(format_into(|b| {
        let mut s = heapless_hex(id);
        b.put_slice(b"hyd-");
        b.put_slice(s.as_bytes_mut());
    }))
}

fn heapless_hex(n: u64) -> Digits {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut buf = [0u8; 20];
    for (i, slot) in buf[4..].iter_mut().enumerate() {
        *slot = HEX[((n >> (60 - 4 * i)) & 0xf) as usize];
    }
    Digits { buf, start: 4 }
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
    }

    #[test]
    fn many_values_cross_chunks() {
        let vals: Vec<_> = (0..5000u64).map(decimal).collect();
        for (i, v) in vals.iter().enumerate() {
            assert_eq!(v.to_str().unwrap(), i.to_string());
        }
    }
}
