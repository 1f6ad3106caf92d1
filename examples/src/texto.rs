//! What text the system accepts from outside (HTTP bodies, path segments, query strings, broker
//! messages), checked before the domain or a database sees it.
//!
//! The rules exist because some text cannot be stored everywhere: PostgreSQL refuses the NUL
//! character in `text` (SQLSTATE 22021) and the `\u0000` escape in `jsonb` (22P05), and its
//! indexes refuse keys over about 2.7 KB (54000). Refused here, such input is a 400 naming the
//! field and the reason on every backend, instead of a failed write (SQLite would even store
//! it, so the same request would behave differently per database).

use seedwork::domain::DomainError;

/// The longest id (of a reservation or a client) accepted, in characters. Ids are primary keys
/// and parts of keys: at 4 bytes a character this keeps every key well inside PostgreSQL's
/// index limit, and no sensible id comes near it.
pub const LARGO_MAXIMO_ID: usize = 128;

/// The longest page cursor (`after`) accepted, in characters: a cursor is an id or a key built
/// from ids (see [`crate::cliente`]), never longer than this.
pub const LARGO_MAXIMO_CURSOR: usize = 4096;

/// Checks an id from outside (a reservation, a client): not blank, at most
/// [`LARGO_MAXIMO_ID`] characters and no control characters (NUL, line breaks, DEL, C1…),
/// which have no place in an id that travels in URLs, headers and logs.
///
/// ```
/// use alpespartners::texto::identificador;
///
/// assert!(identificador("id", "test-reserva-123").is_ok());
/// assert!(identificador("id", "a\u{0}b").unwrap_err().to_string().contains("U+0000"));
/// assert!(identificador("id", "  ").is_err());
/// ```
pub fn identificador(campo: &str, valor: &str) -> Result<(), DomainError> {
    if valor.trim().is_empty() {
        return Err(DomainError::invalid_value(campo, "an id cannot be blank"));
    }
    if valor.chars().count() > LARGO_MAXIMO_ID {
        return Err(DomainError::invalid_value(
            campo,
            format!("an id has at most {LARGO_MAXIMO_ID} characters"),
        ));
    }
    sin_control(campo, valor, "an id")
}

/// Checks a page cursor from outside: at most [`LARGO_MAXIMO_CURSOR`] characters and no control
/// characters (a cursor is an id or built from ids, so it has none).
pub fn cursor(campo: &str, valor: &str) -> Result<(), DomainError> {
    if valor.chars().count() > LARGO_MAXIMO_CURSOR {
        return Err(DomainError::invalid_value(
            campo,
            format!("a cursor has at most {LARGO_MAXIMO_CURSOR} characters"),
        ));
    }
    sin_control(campo, valor, "a cursor")
}

/// Checks free text from outside (a name): anything but the NUL character, which PostgreSQL
/// cannot store.
///
/// ```
/// use alpespartners::texto::libre;
///
/// assert!(libre("nombre", "El Dorado\t(BOG) ✈").is_ok());
/// assert!(libre("nombre", "El\u{0}Dorado").is_err());
/// ```
pub fn libre(campo: &str, valor: &str) -> Result<(), DomainError> {
    match valor.char_indices().find(|(_, c)| *c == '\0') {
        Some((posicion, _)) => Err(DomainError::invalid_value(
            campo,
            format!(
                "contains the NUL character (U+0000) at byte {posicion}, which cannot be stored"
            ),
        )),
        None => Ok(()),
    }
}

fn sin_control(campo: &str, valor: &str, que: &str) -> Result<(), DomainError> {
    match valor.char_indices().find(|(_, c)| c.is_control()) {
        Some((posicion, c)) => Err(DomainError::invalid_value(
            campo,
            format!(
                "contains the control character U+{:04X} at byte {posicion}; {que} cannot hold \
                 control characters",
                u32::from(c)
            ),
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_refuse_blanks_controls_and_length() {
        assert!(identificador("id", "r-1 ñ ✈ \u{FEFF}").is_ok());
        for malo in ["", " \t", "a\u{0}", "a\nb", "a\u{7F}", "a\u{85}"] {
            assert!(identificador("id", malo).is_err(), "{malo:?}");
        }
        assert!(identificador("id", &"é".repeat(LARGO_MAXIMO_ID)).is_ok());
        assert!(identificador("id", &"é".repeat(LARGO_MAXIMO_ID + 1)).is_err());
    }

    #[test]
    fn errors_name_the_field_and_the_character() {
        let error = identificador("id_cliente", "x\u{1}")
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "invalid id_cliente: contains the control character U+0001 at byte 1; an id cannot \
             hold control characters"
        );
        let error = libre("nombre", "ab\u{0}").unwrap_err().to_string();
        assert_eq!(
            error,
            "invalid nombre: contains the NUL character (U+0000) at byte 2, which cannot be stored"
        );
    }

    #[test]
    fn cursors_may_be_empty_but_not_long_or_controlled() {
        assert!(cursor("after", "").is_ok());
        assert!(cursor("after", &"a".repeat(LARGO_MAXIMO_CURSOR)).is_ok());
        assert!(cursor("after", &"a".repeat(LARGO_MAXIMO_CURSOR + 1)).is_err());
        assert!(cursor("after", "a\u{0}").is_err());
    }
}
