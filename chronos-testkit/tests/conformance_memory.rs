//! The conformance suite on the in-memory reference backend.

chronos_testkit::conformance_suite!(chronos_testkit::memory_harness);
