//! The JWT signing algorithm the server is pinned to (`--jwt-algorithm`): tokens in any other
//! algorithm are refused, whatever their header says.

use std::fmt;

/// One of the algorithms the server can sign and verify with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum JwtAlgorithm {
    /// HMAC with SHA-256 and the shared secret of `--jwt-secret-file` (the default).
    #[default]
    Hs256,
    /// RSASSA-PKCS1-v1_5 with SHA-256; PEM keys.
    Rs256,
    /// Ed25519; PEM keys.
    EdDsa,
}

impl JwtAlgorithm {
    /// Every algorithm, in the order the help text lists them.
    pub const ALL: [JwtAlgorithm; 3] = [
        JwtAlgorithm::Hs256,
        JwtAlgorithm::Rs256,
        JwtAlgorithm::EdDsa,
    ];

    /// The name as it stands in a token's `alg` header: `HS256`, `RS256`, `EdDSA`.
    pub const fn as_str(self) -> &'static str {
        match self {
            JwtAlgorithm::Hs256 => "HS256",
            JwtAlgorithm::Rs256 => "RS256",
            JwtAlgorithm::EdDsa => "EdDSA",
        }
    }

    /// Parses a setting's value: the header name in any letter case (`HS256`, `eddsa`).
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        Self::ALL
            .into_iter()
            .find(|alg| alg.as_str().eq_ignore_ascii_case(s))
    }

    /// Whether the algorithm verifies with a public key (and so needs `--jwt-public-key-file`).
    pub const fn is_asymmetric(self) -> bool {
        !matches!(self, JwtAlgorithm::Hs256)
    }
}

impl fmt::Display for JwtAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_header_names_in_any_case() {
        assert_eq!(JwtAlgorithm::parse("HS256"), Some(JwtAlgorithm::Hs256));
        assert_eq!(JwtAlgorithm::parse(" rs256 "), Some(JwtAlgorithm::Rs256));
        assert_eq!(JwtAlgorithm::parse("EdDSA"), Some(JwtAlgorithm::EdDsa));
        assert_eq!(JwtAlgorithm::parse("eddsa"), Some(JwtAlgorithm::EdDsa));
        for bad in ["", "none", "HS384", "ES256", "RS 256"] {
            assert_eq!(JwtAlgorithm::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn names_round_trip() {
        for alg in JwtAlgorithm::ALL {
            assert_eq!(JwtAlgorithm::parse(&alg.to_string()), Some(alg));
        }
        assert!(!JwtAlgorithm::Hs256.is_asymmetric());
        assert!(JwtAlgorithm::Rs256.is_asymmetric() && JwtAlgorithm::EdDsa.is_asymmetric());
    }
}
