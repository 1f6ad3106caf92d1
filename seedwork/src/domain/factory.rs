use super::DomainError;

/// Builds a domain object from some input, checking the business rules on the way
/// (`Fabrica.crear_objeto`).
pub trait Factory<Input> {
    /// What the factory builds.
    type Output;

    /// Builds it, or says which rule the input broke.
    fn create(&self, input: Input) -> Result<Self::Output, DomainError>;
}

/// Translates between a domain object and an external representation (a DTO, a row, a JSON
/// document): the Python `Mapeador`.
pub trait Mapper<Domain, External> {
    /// Domain → external. Infallible: the domain object is valid by construction.
    fn to_external(&self, domain: &Domain) -> External;

    /// External → domain; fails when the external data breaks a rule.
    fn to_domain(&self, external: External) -> Result<Domain, DomainError>;
}
