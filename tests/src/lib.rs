//! Black-box end-to-end tests: they start the real `iga` binary on a
//! temporary data dir and a free port and talk to it over HTTP. The tests
//! live in `tests/`; this library holds nothing.
