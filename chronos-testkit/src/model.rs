//! The pure model of the property test.
