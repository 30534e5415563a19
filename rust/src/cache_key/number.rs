//! Canonical numbers: the exact decimal value, written the way ECMAScript's Number.prototype.toString lays out digits.

/// Writes the number `-? int.frac e exponent` in canonical form.
///
/// The value is kept exact (no rounding to a double): leading and trailing
/// zeros are dropped, giving digits `d` (k of them) and a decimal point
/// position `n` (value = 0.d × 10^n), which are then laid out as ECMAScript
/// does (plain up to 21 integer digits, `0.000ddd` down to 10^-6, else
/// `d.ddde±x`). For every literal that is the shortest form of a double this
/// is exactly RFC 8785's output; longer literals keep all their digits, so
/// two different values never share a form. Zero (also `-0`) is `0`.
pub fn write_number(out: &mut Vec<u8>, negative: bool, int: &[u8], frac: &[u8], exponent: i64) {
    let all = int.iter().chain(frac);
    let leading = all.clone().take_while(|&&d| d == b'0').count();
    let total = int.len() + frac.len();
    if leading == total {
        out.push(b'0');
        return;
    }
    let mut digits: Vec<u8> = all.skip(leading).copied().collect();
    while digits.last() == Some(&b'0') {
        digits.pop();
    }
    // Position of the decimal point relative to the first significant digit.
    // Input sizes are bounded by memory and |exponent| <= 10^9, so no overflow.
    let int_len = i64::try_from(int.len()).unwrap_or(i64::MAX);
    let leading = i64::try_from(leading).unwrap_or(i64::MAX);
    let n = int_len - leading + exponent;
    let k = i64::try_from(digits.len()).unwrap_or(i64::MAX);
    if negative {
        out.push(b'-');
    }
    if k <= n && n <= 21 {
        out.extend_from_slice(&digits);
        out.extend(std::iter::repeat_n(
            b'0',
            usize::try_from(n - k).unwrap_or(0),
        ));
    } else if 0 < n && n <= 21 {
        let split = usize::try_from(n).unwrap_or(0);
        out.extend_from_slice(&digits[..split]);
        out.push(b'.');
        out.extend_from_slice(&digits[split..]);
    } else if -6 < n && n <= 0 {
        out.extend_from_slice(b"0.");
        out.extend(std::iter::repeat_n(b'0', usize::try_from(-n).unwrap_or(0)));
        out.extend_from_slice(&digits);
    } else {
        out.push(digits[0]);
        if digits.len() > 1 {
            out.push(b'.');
            out.extend_from_slice(&digits[1..]);
        }
        out.push(b'e');
        out.push(if n > 0 { b'+' } else { b'-' });
        out.extend_from_slice((n - 1).unsigned_abs().to_string().as_bytes());
    }
}
