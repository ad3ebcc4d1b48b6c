// Package respcache owns the response cache: finished answers of
// deterministic completions (greedy, or a fixed seed), kept in memory under
// a byte bound with LRU eviction and an optional TTL, and the in-flight
// collapse that makes identical requests arriving together share one
// generation. It knows how a key is made (Key: the model file's sha256, its
// adapters' sha256, the output-affecting settings of the model block and the
// whole runner request) and whether a request may be cached at all
// (Cacheable). It does not choose models, talk to runners or speak HTTP:
// the API hands it a generate function and encodes what it returns.
package respcache
