// A small persistent thread pool that runs "chunk i of n" jobs. Chunks are handed out dynamically,
// but callers store per-chunk results by index and merge them in order, so results never depend on
// the number of threads or on timing.
#pragma once
#include <cstdint>
#include <functional>

namespace qk {

// Runs fn(chunk) for chunk in [0, n) on up to `threads` threads (the caller included). Jobs from
// several callers are serialized: the pool never runs more than `threads` kernel threads at once.
void parallel_for(int threads, int64_t n, const std::function<void(int64_t)>& fn);

// Rows per chunk for a row length: about 64K elements, depending only on the shape.
int64_t rows_per_chunk(int64_t cols);

}  // namespace qk
