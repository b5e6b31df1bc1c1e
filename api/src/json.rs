//! Serde helpers for the API's numbers.

use serde::Deserialize;

/// Reads an integer field that JSON may spell as a whole float (`42.0`, which
/// JSON Schema counts as an integer): `#[serde(deserialize_with = "iga_api::json::whole")]`.
pub fn whole<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<i64>,
{
    use serde::de::Error;
    let n = serde_json::Number::deserialize(d)?;
    let i = match (n.as_i64(), n.as_f64()) {
        (Some(i), _) => i,
        (None, Some(f)) if f.fract() == 0.0 && f.abs() < 9.0e15 => f as i64,
        _ => {
            return Err(D::Error::custom(format!(
                "{n} is not a whole number in range"
            )))
        }
    };
    T::try_from(i).map_err(|_| D::Error::custom(format!("{n} is out of range")))
}

/// [`whole`] for an optional field (absent or `null`: `None`).
pub fn whole_opt<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<i64>,
{
    #[derive(serde::Deserialize)]
    struct W<T: TryFrom<i64>>(#[serde(deserialize_with = "whole")] T);
    Ok(Option::<W<T>>::deserialize(d)?.map(|w| w.0))
}
