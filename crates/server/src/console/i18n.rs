//! Console texts by language. English is built in; every other language is
//! a TOML file of the same keys in `lang/`, and a missing key falls back to
//! English (issue 3: "the strings must be translatable").

use std::collections::HashMap;
use std::sync::OnceLock;

/// Languages the console offers, with their texts.
const LANGUAGES: &[(&str, &str)] = &[("en", include_str!("lang/en.toml"))];

/// The codes of the languages a user may pick.
pub(crate) const LANGUAGE_CODES: &[&str] = &["en"];

fn texts() -> &'static HashMap<&'static str, HashMap<String, String>> {
    static TEXTS: OnceLock<HashMap<&'static str, HashMap<String, String>>> = OnceLock::new();
    TEXTS.get_or_init(|| {
        LANGUAGES
            .iter()
            .map(|(lang, source)| {
                let table: HashMap<String, String> =
                    toml::from_str(source).expect("the built-in console texts parse");
                (*lang, table)
            })
            .collect()
    })
}

/// The text `key` in `lang`, else in English, else the key itself.
pub(crate) fn t<'a>(lang: &str, key: &'a str) -> &'a str
where
    'static: 'a,
{
    let all = texts();
    all.get(lang)
        .and_then(|table| table.get(key))
        .or_else(|| all.get("en").and_then(|table| table.get(key)))
        .map_or(key, String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_language_offered_has_texts() {
        assert_eq!(
            LANGUAGE_CODES,
            LANGUAGES.iter().map(|(code, _)| *code).collect::<Vec<_>>()
        );
    }

    #[test]
    fn texts_fall_back_to_english_then_to_the_key() {
        assert_eq!(t("en", "login_submit"), "Log in");
        assert_eq!(t("xx", "login_submit"), "Log in");
        assert_eq!(t("en", "no_such_key"), "no_such_key");
    }
}
