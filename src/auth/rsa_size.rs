//! The size of an RSA verification key: under [`MIN_RSA_BITS`] bits it is refused at start, since
//! such keys can be factored by a determined attacker (NIST SP 800-131A retired them in 2013).

use jsonwebtoken::DecodingKey;
use pkcs1::der::Decode;

use crate::config::JwtAlgorithm;

/// The smallest RSA modulus accepted, in bits.
pub const MIN_RSA_BITS: usize = 2048;

/// `key` unchanged when it is not an RSA key or is large enough; else why it is refused.
pub fn check(algorithm: JwtAlgorithm, key: DecodingKey) -> Result<DecodingKey, String> {
    if algorithm != JwtAlgorithm::Rs256 {
        return Ok(key);
    }
    let der = key
        .try_get_as_bytes()
        .map_err(|e| format!("cannot read the RSA key: {e}"))?;
    let bits = modulus_bits(der)?;
    if bits < MIN_RSA_BITS {
        return Err(format!(
            "the RSA key has {bits} bits; at least {MIN_RSA_BITS} are required"
        ));
    }
    Ok(key)
}

/// The size in bits of the modulus of a PKCS#1 `RSAPublicKey` (DER).
fn modulus_bits(der: &[u8]) -> Result<usize, String> {
    let key =
        pkcs1::RsaPublicKey::from_der(der).map_err(|e| format!("not an RSA public key: {e}"))?;
    // DER integers carry no leading zero bytes beyond a sign byte, which `as_bytes` drops.
    let bytes = key.modulus.as_bytes();
    Ok(match bytes.first() {
        None => 0,
        Some(first) => (bytes.len() - 1) * 8 + (8 - first.leading_zeros() as usize),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::test_keys::fixture;

    fn public_key(name: &str) -> DecodingKey {
        let pem = std::fs::read(fixture(name)).expect("fixture");
        DecodingKey::from_rsa_pem(&pem).expect("an RSA public key")
    }

    #[test]
    fn a_2048_bit_key_passes_and_a_1024_bit_key_is_refused() {
        assert!(check(JwtAlgorithm::Rs256, public_key("rs256-public.pem")).is_ok());
        let err =
            check(JwtAlgorithm::Rs256, public_key("rs1024-public.pem")).expect_err("too small");
        assert_eq!(err, "the RSA key has 1024 bits; at least 2048 are required");
    }

    #[test]
    fn counts_the_bits_of_the_modulus() {
        let der = public_key("rs256-public.pem")
            .try_get_as_bytes()
            .expect("DER")
            .to_vec();
        assert_eq!(modulus_bits(&der), Ok(2048));
        assert!(modulus_bits(b"not DER").is_err());
    }
}
