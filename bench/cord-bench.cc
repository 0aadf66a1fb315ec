// The absl::Cord side of kcom-bench's mbufchain comparison (section 5): plain functions with C
// linkage that bench/kcom-bench.c calls, so Cord runs interleaved with kcom in the same
// repetitions and every ratio is taken within one run.  Built only when configure found absl.
#include <cstdint>
#include <cstring>

#include <absl/strings/cord.h>

extern "C" {

// A Cord built from `size` bytes of `src` appended `chunk` bytes at a time.
void *cord_bench_build(const unsigned char *src, size_t size, size_t chunk)
{
	absl::Cord *c = new absl::Cord();
	for (size_t off = 0; off < size; off += chunk)
		c->Append(absl::string_view(reinterpret_cast<const char *>(src) + off, chunk));
	return c;
}

void cord_bench_free(void *cord)
{
	delete static_cast<absl::Cord *>(cord);
}

// `ops` reads of `n` bytes at offs[i & mask] into dst: char_begin() + Advance, then chunk copies.
void cord_bench_rand(void *cord, const int64_t *offs, size_t mask, size_t ops, unsigned char *dst, size_t n)
{
	const absl::Cord &c = *static_cast<absl::Cord *>(cord);
	for (size_t i = 0; i < ops; i++) {
		absl::Cord::CharIterator it = c.char_begin();
		absl::Cord::Advance(&it, static_cast<size_t>(offs[i & mask]));
		for (size_t done = 0; done < n;) {
			absl::string_view sv = absl::Cord::ChunkRemaining(it);
			size_t k = sv.size() < n - done ? sv.size() : n - done;
			std::memcpy(dst + done, sv.data(), k);
			done += k;
			if (done < n)
				absl::Cord::Advance(&it, k);
		}
		__asm__ __volatile__("" : : "r"(dst) : "memory");
	}
}

// `ops` whole copies by copy construction, each destroyed at once.
void cord_bench_copy(void *cord, size_t ops)
{
	const absl::Cord &c = *static_cast<absl::Cord *>(cord);
	for (size_t i = 0; i < ops; i++) {
		absl::Cord copy(c);
		__asm__ __volatile__("" : : "r"(&copy) : "memory");
	}
}

}
