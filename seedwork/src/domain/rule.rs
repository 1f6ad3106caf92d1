use super::DomainError;

/// A business rule: a condition the domain must hold, with a message explaining it
/// (the Python `ReglaNegocio`).
///
/// ```
/// use seedwork::domain::{check_rule, BusinessRule, DomainError};
///
/// struct AtLeastOneItem<'a>(&'a [u32]);
///
/// impl BusinessRule for AtLeastOneItem<'_> {
///     fn is_satisfied(&self) -> bool {
///         !self.0.is_empty()
///     }
///     fn message(&self) -> String {
///         "an order needs at least one item".into()
///     }
/// }
///
/// assert!(check_rule(&AtLeastOneItem(&[1])).is_ok());
/// let err = check_rule(&AtLeastOneItem(&[])).unwrap_err();
/// assert!(matches!(err, DomainError::BusinessRule { rule: "AtLeastOneItem", .. }));
/// assert_eq!(err.to_string(), "an order needs at least one item");
/// ```
pub trait BusinessRule {
    /// Whether the rule holds (`es_valido`).
    fn is_satisfied(&self) -> bool;

    /// Why the rule exists, worded for the person who broke it.
    fn message(&self) -> String;

    /// The rule's name, by default the last segment of its type name.
    fn name(&self) -> &'static str {
        short_type_name(std::any::type_name::<Self>())
    }
}

/// Checks one rule, turning a broken rule into [`DomainError::BusinessRule`].
pub fn check_rule<R: BusinessRule + ?Sized>(rule: &R) -> Result<(), DomainError> {
    if rule.is_satisfied() {
        Ok(())
    } else {
        Err(DomainError::BusinessRule {
            rule: rule.name(),
            message: rule.message(),
        })
    }
}

/// Checks rules in order and reports the first broken one.
pub fn check_rules(rules: &[&dyn BusinessRule]) -> Result<(), DomainError> {
    rules.iter().try_for_each(|rule| check_rule(*rule))
}

/// `a::b::Rule<'_, T>` → `Rule`.
pub(crate) fn short_type_name(full: &'static str) -> &'static str {
    let without_generics = full.split('<').next().unwrap_or(full);
    without_generics
        .rsplit("::")
        .next()
        .unwrap_or(without_generics)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_drop_paths_and_generics() {
        assert_eq!(short_type_name("a::b::Rule<'_, c::T>"), "Rule");
        assert_eq!(short_type_name("Rule"), "Rule");
    }

    struct Never;
    impl BusinessRule for Never {
        fn is_satisfied(&self) -> bool {
            false
        }
        fn message(&self) -> String {
            "never".into()
        }
    }
    struct Always;
    impl BusinessRule for Always {
        fn is_satisfied(&self) -> bool {
            true
        }
        fn message(&self) -> String {
            "always".into()
        }
    }

    #[test]
    fn check_rules_reports_the_first_broken_rule() {
        assert_eq!(check_rules(&[&Always, &Always]), Ok(()));
        let err = check_rules(&[&Always, &Never, &Always]).unwrap_err();
        assert_eq!(
            err,
            DomainError::BusinessRule {
                rule: "Never",
                message: "never".into()
            }
        );
    }
}
