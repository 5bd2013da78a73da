// C++ on homing under LD_PRELOAD: operator new/delete (libstdc++'s call
// malloc/free), aligned new (aligned_alloc), exceptions (allocated with
// malloc), std::thread with thread_local destructors that allocate, and
// containers freed on other threads.
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <dlfcn.h>

#define CHECK(cond)                                                                \
    do {                                                                           \
        if (!(cond)) {                                                             \
            std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, \
                         #cond);                                                   \
            std::exit(1);                                                          \
        }                                                                          \
    } while (0)

namespace {

// Threads in the thread cases.
constexpr int kThreads = 4;

void *defining_object(const char *symbol) {
    Dl_info info;
    void *addr = dlsym(RTLD_DEFAULT, symbol);
    if (addr == nullptr || dladdr(addr, &info) == 0) return nullptr;
    return info.dli_fbase;
}

struct alignas(256) Aligned {
    char bytes[300];
};

void containers() {
    std::map<int, std::string> m;
    for (int i = 0; i < 20000; i++) m[i] = std::to_string(i) + std::string(i % 50, 'x');
    std::unordered_map<std::string, std::vector<int>> u;
    for (int i = 0; i < 5000; i++) u[std::to_string(i)].assign(i % 100, i);
    CHECK(m[1234] == "1234" + std::string(1234 % 50, 'x'));
    CHECK(u["77"].size() == 77);
}

void aligned_new() {
    std::vector<std::unique_ptr<Aligned>> v;
    for (int i = 0; i < 1000; i++) {
        v.emplace_back(new Aligned());
        CHECK(reinterpret_cast<std::uintptr_t>(v.back().get()) % 256 == 0);
    }
}

void exceptions() {
    int caught = 0;
    for (int i = 0; i < 1000; i++) {
        try {
            throw std::runtime_error("error number " + std::to_string(i));
        } catch (const std::runtime_error &e) {
            caught += std::strncmp(e.what(), "error number", 12) == 0;
        }
    }
    CHECK(caught == 1000);
}

struct Tracker {
    std::string name;
    std::vector<std::string> items;
    ~Tracker() {
        // Allocates during thread exit (thread_local destructors run before
        // pthread key destructors).
        std::string last = name + " done";
        items.clear();
        items.push_back(last);
    }
};

thread_local Tracker tracker;

void threads_with_thread_locals() {
    std::atomic<int> done{0};
    std::mutex mu;
    std::vector<std::unique_ptr<std::vector<std::string>>> handed_over;
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; t++) {
        threads.emplace_back([t, &done, &mu, &handed_over] {
            tracker.name = "thread " + std::to_string(t);
            for (int i = 0; i < 1000; i++) tracker.items.push_back(std::to_string(i));
            auto v = std::make_unique<std::vector<std::string>>();
            for (int i = 0; i < 1000; i++) v->push_back(std::string(100, 'a' + t));
            std::lock_guard<std::mutex> lock(mu);
            handed_over.push_back(std::move(v));
            done++;
        });
    }
    for (auto &t : threads) t.join();
    CHECK(done == kThreads);
    // Freed here, on the main thread, after their threads exited.
    for (auto &v : handed_over) CHECK(v->size() == 1000);
    handed_over.clear();
}

char *volatile impossible_block = nullptr;

// A size the machine cannot commit (1 TiB): `new` throws instead of
// handing out memory that kills the program when touched.
void impossible_new_throws() {
    std::FILE *f = std::fopen("/proc/sys/vm/overcommit_memory", "r");
    int mode = 0;
    if (f != nullptr) {
        if (std::fscanf(f, "%d", &mode) != 1) mode = 0;
        std::fclose(f);
    }
    if (mode == 1) return;  // the kernel accepts every size
    volatile std::size_t tib = std::size_t(1) << 40;
    bool threw = false;
    try {
        // Kept in a volatile global, so the compiler may not elide the pair.
        impossible_block = new char[tib];
        delete[] impossible_block;
    } catch (const std::bad_alloc &) {
        threw = true;
    }
    CHECK(threw);
}

}  // namespace

int main() {
    void *homing = defining_object("homing_malloc");
    CHECK(homing != nullptr && defining_object("malloc") == homing);
    containers();
    aligned_new();
    exceptions();
    threads_with_thread_locals();
    impossible_new_throws();
    std::puts("ok");
    return 0;
}
