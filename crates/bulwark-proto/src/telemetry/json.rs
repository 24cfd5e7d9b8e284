//! A fast path for the JSON form of a telemetry sample: a reader of the
//! shape agents actually send, beside `serde_json`, which stays the
//! authority.
//!
//! Decoding JSON through `serde_json`'s derived `Deserialize` was about a
//! quarter of the device gateway's work per typical sample. This reader
//! takes the same text in one pass with no intermediate values, and it
//! only ever answers "this is the sample" or "ask `serde_json`":
//!
//! - anything outside the plain shape gives `None`: an escape or control
//!   character in a string, an unknown or repeated key, a missing field,
//!   `null` where a value is required, a number with a sign, an exponent,
//!   a leading zero, more than 15 digits before or after the point, a
//!   decimal whose digits reach 2^53, a value out of its type's range,
//!   trailing text;
//! - so on `None` the caller parses with `serde_json`, which gives the
//!   same answer it always gave (the sample, or its precise error);
//! - whenever it gives `Some`, `serde_json` gives the same value: numbers
//!   are converted with the same operations (an integer `as f32`; a
//!   decimal as its digits over a power of ten, both exact in `f64`, so
//!   one correctly rounded division, then `as f32`), addresses with the
//!   same `IpAddr` parser. A unit test over mutated samples and the
//!   `telemetry_decode` fuzz target check that claim against `serde_json`.

use std::net::IpAddr;

use super::{Connection, ConnectionState, ListeningPort, NetCounters, Telemetry, TransportProto};

/// Powers of ten exactly representable in `f64`.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

struct Reader<'a> {
    /// The text, and the same as bytes.
    s: &'a str,
    b: &'a [u8],
    i: usize,
}

impl<'a> Reader<'a> {
    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    /// The next byte after white space, consumed when it is `c`.
    fn eat(&mut self, c: u8) -> Option<()> {
        self.ws();
        (self.b.get(self.i) == Some(&c)).then(|| self.i += 1)
    }

    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.b.get(self.i).copied()
    }

    /// A string without escapes or control characters.
    fn str(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let start = self.i;
        let len = self.b[start..]
            .iter()
            .position(|&c| c == b'"' || c == b'\\' || c < 0x20)?;
        self.i = start + len;
        if self.b[self.i] != b'"' {
            return None;
        }
        self.i += 1;
        // Both ends are ASCII quotes of a `str`: character boundaries.
        self.s.get(start..start + len)
    }

    /// `[0-9]+`, at most 15 digits: (value, digits). A leading zero
    /// (`007`) is refused unless `fraction` (the digits after a point).
    fn digits(&mut self, fraction: bool) -> Option<(u64, u32)> {
        let start = self.i;
        let mut v: u64 = 0;
        while let Some(d @ b'0'..=b'9') = self.b.get(self.i).copied() {
            v = v * 10 + u64::from(d - b'0');
            self.i += 1;
            if self.i - start > 15 {
                return None;
            }
        }
        let n = (self.i - start) as u32;
        let leading_zero = !fraction && n > 1 && self.b[start] == b'0';
        (n > 0 && !leading_zero).then_some((v, n))
    }

    /// An unsigned integer; `None` for a fraction or exponent (`serde_json`
    /// refuses those for integer fields, or decides).
    fn u64(&mut self) -> Option<u64> {
        self.ws();
        let (v, _) = self.digits(false)?;
        match self.b.get(self.i) {
            Some(b'.' | b'e' | b'E' | b'0'..=b'9') => None,
            _ => Some(v),
        }
    }

    fn u16(&mut self) -> Option<u16> {
        u16::try_from(self.u64()?).ok()
    }

    /// `null`, or an unsigned integer.
    fn opt_u64(&mut self) -> Option<Option<u64>> {
        if self.peek()? == b'n' {
            return self.b[self.i..].starts_with(b"null").then(|| {
                self.i += 4;
                None
            });
        }
        self.u64().map(Some)
    }

    /// A non-negative number as `f32`, as `serde_json` makes it.
    fn f32(&mut self) -> Option<f32> {
        self.ws();
        let (int, _) = self.digits(false)?;
        match self.b.get(self.i) {
            Some(b'.') => {
                self.i += 1;
                let (frac, k) = self.digits(true)?;
                if matches!(self.b.get(self.i), Some(b'e' | b'E')) {
                    return None;
                }
                // Below 2^53 the digits are exact in f64, and so is 10^k
                // (k ≤ 15): one correctly rounded division.
                let significand = int.checked_mul(10u64.pow(k))?.checked_add(frac)?;
                if significand >= 1 << 53 {
                    return None;
                }
                let v = significand as f64 / POW10[k as usize];
                Some(v as f32)
            }
            Some(b'e' | b'E') => None,
            _ => Some(int as f32),
        }
    }

    fn addr(&mut self) -> Option<IpAddr> {
        self.str()?.parse().ok()
    }

    fn proto(&mut self) -> Option<TransportProto> {
        match self.str()? {
            "tcp" => Some(TransportProto::Tcp),
            "udp" => Some(TransportProto::Udp),
            _ => None,
        }
    }

    fn state(&mut self) -> Option<ConnectionState> {
        match self.str()? {
            "established" => Some(ConnectionState::Established),
            "syn_sent" => Some(ConnectionState::SynSent),
            "syn_recv" => Some(ConnectionState::SynRecv),
            "closing" => Some(ConnectionState::Closing),
            _ => None,
        }
    }

    /// Calls `field` for each key of an object (`{` already expected);
    /// `field` reads the value and reports whether it knew the key.
    fn object(&mut self, mut field: impl FnMut(&mut Self, &str) -> Option<()>) -> Option<()> {
        self.eat(b'{')?;
        if self.eat(b'}').is_some() {
            return Some(());
        }
        loop {
            let key = self.str()?;
            self.eat(b':')?;
            field(self, key)?;
            if self.eat(b',').is_some() {
                continue;
            }
            return self.eat(b'}');
        }
    }

    fn array<T>(&mut self, mut item: impl FnMut(&mut Self) -> Option<T>) -> Option<Vec<T>> {
        self.eat(b'[')?;
        let mut out = Vec::new();
        if self.eat(b']').is_some() {
            return Some(out);
        }
        loop {
            out.push(item(self)?);
            if self.eat(b',').is_some() {
                continue;
            }
            self.eat(b']')?;
            return Some(out);
        }
    }
}

/// Sets `slot` once; a second time is a repeated key.
fn once<T>(slot: &mut Option<T>, v: Option<T>) -> Option<()> {
    if slot.is_some() {
        return None;
    }
    *slot = Some(v?);
    Some(())
}

fn listening(r: &mut Reader<'_>) -> Option<ListeningPort> {
    let (mut proto, mut port, mut addr) = (None, None, None);
    r.object(|r, k| match k {
        "proto" => once(&mut proto, r.proto()),
        "port" => once(&mut port, r.u16()),
        "addr" => once(&mut addr, r.addr()),
        _ => None,
    })?;
    Some(ListeningPort {
        proto: proto?,
        port: port?,
        addr: addr?,
    })
}

fn connection(r: &mut Reader<'_>) -> Option<Connection> {
    let (mut proto, mut local_port, mut remote_addr, mut remote_port, mut state) =
        (None, None, None, None, None);
    r.object(|r, k| match k {
        "proto" => once(&mut proto, r.proto()),
        "local_port" => once(&mut local_port, r.u16()),
        "remote_addr" => once(&mut remote_addr, r.addr()),
        "remote_port" => once(&mut remote_port, r.u16()),
        "state" => once(&mut state, r.state()),
        _ => None,
    })?;
    Some(Connection {
        proto: proto?,
        local_port: local_port?,
        remote_addr: remote_addr?,
        remote_port: remote_port?,
        state: state?,
    })
}

fn net(r: &mut Reader<'_>) -> Option<NetCounters> {
    let (mut bytes_in, mut bytes_out, mut packets_in, mut packets_out) = (None, None, None, None);
    r.object(|r, k| match k {
        "bytes_in" => once(&mut bytes_in, r.u64()),
        "bytes_out" => once(&mut bytes_out, r.u64()),
        "packets_in" => once(&mut packets_in, r.u64()),
        "packets_out" => once(&mut packets_out, r.u64()),
        _ => None,
    })?;
    Some(NetCounters {
        bytes_in: bytes_in?,
        bytes_out: bytes_out?,
        packets_in: packets_in?,
        packets_out: packets_out?,
    })
}

/// The sample, when `text` has the plain shape; `None` means "parse it
/// with `serde_json`" (which may still accept it, or says why not).
/// Public for the fuzz target that checks it against `serde_json`.
#[doc(hidden)]
pub fn decode_fast(text: &str) -> Option<Telemetry> {
    let mut r = Reader {
        s: text,
        b: text.as_bytes(),
        i: 0,
    };
    let mut schema = None;
    let mut time = None;
    let mut seq = None;
    let mut listening_ports = None;
    let mut connections = None;
    let mut net_counters = None;
    let mut connection_attempts = None;
    let mut failed_logins = None;
    let mut process_count = None;
    let mut cpu_percent = None;
    let mut memory_percent = None;
    let mut failed_attempts = None;
    r.object(|r, k| match k {
        "schema" => once(&mut schema, r.u64().and_then(|v| u32::try_from(v).ok())),
        "time" => once(&mut time, r.u64()),
        "seq" => once(&mut seq, r.u64()),
        "listening" => once(&mut listening_ports, r.array(listening)),
        "connections" => once(&mut connections, r.array(connection)),
        "net" => once(&mut net_counters, net(r)),
        "connection_attempts" => once(&mut connection_attempts, r.u64()),
        "failed_logins" => once(&mut failed_logins, r.opt_u64()),
        "process_count" => once(&mut process_count, r.u64()),
        "cpu_percent" => once(&mut cpu_percent, r.f32()),
        "memory_percent" => once(&mut memory_percent, r.f32()),
        "failed_attempts" => once(&mut failed_attempts, r.opt_u64()),
        _ => None,
    })?;
    r.ws();
    if r.i != r.b.len() {
        return None;
    }
    Some(Telemetry {
        schema: schema?,
        time: time?,
        seq: seq?,
        listening: listening_ports?,
        connections: connections?,
        net: net_counters?,
        connection_attempts: connection_attempts?,
        failed_logins: failed_logins.flatten(),
        process_count: process_count?,
        cpu_percent: cpu_percent?,
        memory_percent: memory_percent?,
        failed_attempts: failed_attempts.flatten(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TYPICAL: &str = r#"{"schema":1,"time":1795000000000,"seq":42,"listening":[{"proto":"tcp","port":22,"addr":"0.0.0.0"},{"proto":"tcp","port":8080,"addr":"::"},{"proto":"udp","port":5353,"addr":"192.168.1.20"}],"connections":[{"proto":"tcp","local_port":41000,"remote_addr":"198.51.100.7","remote_port":443,"state":"established"},{"proto":"udp","local_port":40001,"remote_addr":"2001:db8::1","remote_port":53,"state":"established"},{"proto":"tcp","local_port":41002,"remote_addr":"203.0.113.9","remote_port":8883,"state":"syn_sent"}],"net":{"bytes_in":123456789,"bytes_out":98765432,"packets_in":100000,"packets_out":90000},"connection_attempts":3,"failed_logins":2,"process_count":117,"cpu_percent":12.5,"memory_percent":43.25,"failed_attempts":1}"#;

    /// The claim: `Some` only where `serde_json` gives the same value.
    fn agrees(text: &str) -> bool {
        match decode_fast(text) {
            Some(t) => {
                assert_eq!(
                    serde_json::from_str::<Telemetry>(text).ok().as_ref(),
                    Some(&t),
                    "{text}"
                );
                true
            }
            None => false,
        }
    }

    #[test]
    fn the_typical_sample_takes_the_fast_path() {
        assert!(agrees(TYPICAL));
        let spaced = TYPICAL
            .replace(',', " ,\n\t")
            .replace('{', "{ ")
            .replace('[', "[\r")
            .replace("\"seq\":", "\"seq\" : ")
            .replace("\"proto\":", "\"proto\"\t:\t");
        assert!(agrees(&format!(" {spaced}\n")));
        assert!(agrees(
            &TYPICAL.replace(r#""failed_logins":2"#, r#""failed_logins":null"#)
        ));
        assert!(agrees(&TYPICAL.replace(r#","failed_attempts":1"#, "")));
    }

    #[test]
    fn anything_unusual_goes_to_serde_json() {
        for (from, to) in [
            ("\"seq\":42", "\"seq\":42,\"seq\":43"),
            ("\"seq\":42", "\"seq\":042"),
            ("\"seq\":42", "\"seq\":42.0"),
            ("\"seq\":42", "\"seq\":4e1"),
            ("\"seq\":42", "\"seq\":-42"),
            ("\"seq\":42", "\"seq\":null"),
            ("\"seq\":42", "\"seq\":18446744073709551616"),
            ("\"schema\":1", "\"schema\":4294967296"),
            ("\"port\":22", "\"port\":65536"),
            ("\"cpu_percent\":12.5", "\"cpu_percent\":1.25e1"),
            ("\"cpu_percent\":12.5", "\"cpu_percent\":-12.5"),
            ("\"cpu_percent\":12.5", "\"cpu_percent\":12."),
            ("\"cpu_percent\":12.5", "\"cpu_percent\":0.1234567890123456"),
            ("\"tcp\"", "\"t\\u0063p\""),
            ("\"tcp\"", "\"TCP\""),
            ("\"0.0.0.0\"", "\"0.0.0.0 \""),
            ("\"established\"", "\"listen\""),
            ("}]", "},]"),
            ("\"seq\"", "\"sequence\""),
        ] {
            let text = TYPICAL.replacen(from, to, 1);
            assert_ne!(text, TYPICAL, "{from}");
            assert!(!agrees(&text), "{to} took the fast path");
        }
        assert!(!agrees(&format!("{TYPICAL} x")));
        assert!(!agrees(&TYPICAL.replace(r#""seq":42,"#, "")));
        assert!(!agrees(""));
        assert!(!agrees("{}"));
    }

    #[test]
    fn numbers_convert_as_serde_json_converts_them() {
        for cpu in [
            "0",
            "7",
            "100",
            "0.1",
            "0.30000000000000004",
            "99.999",
            "33.333333333333",
            "1.5",
            "16777217",
            "123456789012345",
            "0.000000000000001",
            "9.87654321",
            "12.50",
        ] {
            let text = TYPICAL.replace("\"cpu_percent\":12.5", &format!("\"cpu_percent\":{cpu}"));
            // Some of these are too long for the fast path; those that
            // take it must agree.
            agrees(&text);
        }
        // Every decimal with up to 15 digits that a mutation produced agrees.
        let mut r: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..20_000 {
            r ^= r << 13;
            r ^= r >> 7;
            r ^= r << 17;
            let digits = 1 + (r % 15) as u32;
            let frac = (r >> 8) as u32 % (digits + 1);
            let v = (r >> 16) % 10u64.pow(digits);
            let s = format!("{v:0width$}", width = digits as usize);
            let (i, f) = s.split_at((digits - frac) as usize);
            let i = i.trim_start_matches('0');
            let i = if i.is_empty() { "0" } else { i };
            let num = if f.is_empty() {
                i.to_owned()
            } else {
                format!("{i}.{f}")
            };
            let text = TYPICAL.replace(
                "\"memory_percent\":43.25",
                &format!("\"memory_percent\":{num}"),
            );
            assert!(agrees(&text), "{num}");
        }
    }

    #[test]
    fn mutated_samples_never_disagree() {
        let bytes = TYPICAL.as_bytes();
        let alphabet = b"0123456789.,:{}[]\" \\-enulatcp";
        let mut r: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut fast = 0;
        for _ in 0..50_000 {
            let mut m = bytes.to_vec();
            for _ in 0..1 + r % 3 {
                r ^= r << 13;
                r ^= r >> 7;
                r ^= r << 17;
                let at = (r % m.len() as u64) as usize;
                match (r >> 32) % 3 {
                    0 => m[at] = alphabet[((r >> 40) % alphabet.len() as u64) as usize],
                    1 => {
                        m.remove(at);
                    }
                    _ => m.insert(at, alphabet[((r >> 40) % alphabet.len() as u64) as usize]),
                }
            }
            if let Ok(text) = std::str::from_utf8(&m) {
                fast += usize::from(agrees(text));
            }
        }
        // Many mutations keep the shape (a digit for a digit): the claim
        // was checked on those, not only on refusals.
        assert!(fast > 1_000, "{fast}");
    }
}
