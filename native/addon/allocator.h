// libtorch's CPU allocator for this process: large buffers on cached anonymous mappings.
#pragma once
#include <cstddef>

namespace ds {

// Installs the allocator as libtorch's CPU allocator (once; later calls do nothing).
void installCpuAllocator();
// Unmaps every cached free buffer and gives glibc's free heap pages back (malloc_trim).
void releaseCachedMemory();
// Bytes of free buffers the cache holds now.
size_t cachedBytes();

}  // namespace ds
