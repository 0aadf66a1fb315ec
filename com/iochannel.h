/**
 * @file com/iochannel.h
 * @brief Per-thread I/O channels (SPDK's io_channel): each thread gets its own channel to a
 *        registered device, holding that thread's private state for it.
 *
 * A driver registers a *device* (any pointer that names it) with a create and a destroy
 * callback and the size of a channel's context.  A thread that wants to do I/O asks for its
 * channel: the first get on that thread allocates the context and calls create; later gets on
 * the same thread return the same channel with one more reference; the last put calls destroy
 * and frees it.  The context is the thread's alone (a pool's page cache, a queue pair), so the
 * fast path takes no lock.  A thread that exits holding channels has them destroyed (through
 * the osenv's thread-exit hook), so nothing leaks.
 *
 * Thread identity comes from the osenv (kcom_thread_self(): the pthread in the hosted library,
 * one thread in a kernel that has no thread_self hook).
 * @code
 * static kcom_error_t cache_create(void *dev, void *ctx) { return pool_cache_init(dev, ctx); }
 * static void cache_destroy(void *dev, void *ctx) { pool_cache_flush(dev, ctx); }
 *
 * kcom_iodev_register(pool, cache_create, cache_destroy, sizeof(struct pool_cache));
 * struct kcom_iochannel *ch;
 * if (KCOM_SUCCEEDED(kcom_iochannel_get(pool, &ch))) {
 *         struct pool_cache *cache = kcom_iochannel_ctx(ch);
 *         ...
 *         kcom_iochannel_put(ch);
 * }
 * @endcode
 */
#ifndef KCOM_COM_IOCHANNEL_H
#define KCOM_COM_IOCHANNEL_H

#include <stddef.h>
#include <stdint.h>
#include <com/error.h>

#ifdef __cplusplus
extern "C" {
#endif

/** @brief A thread's channel to a device (opaque). */
struct kcom_iochannel;

/**
 * @brief Makes a new channel's context ready; called on the thread that asked for it.  It may
 *        get and put other devices' channels; a get of the channel it is making is refused
 *        (KCOM_E_BUSY), since that channel does not exist until it returns.
 * @param dev the device
 * @param ctx the channel's context: ctx_size zeroed bytes
 * @return KCOM_OK, or an error that the get returns (the channel is then not kept)
 */
typedef kcom_error_t (*kcom_iochannel_create_fn)(void *dev, void *ctx);

/**
 * @brief Undoes create when a channel goes (its last put, or its thread's exit).
 * @param dev the device
 * @param ctx the channel's context
 */
typedef void (*kcom_iochannel_destroy_fn)(void *dev, void *ctx);

/**
 * @brief Called once a retired device's last channel has gone (kcom_iodev_retire()).
 * @param dev the device; no callback of it runs again, and it may be freed
 */
typedef void (*kcom_iodev_gone_fn)(void *dev);

/**
 * @brief Registers a device that hands out per-thread channels.
 * @param dev the device (any pointer that names it; not NULL)
 * @param create called for each new channel (not NULL)
 * @param destroy called for each channel that goes (not NULL)
 * @param ctx_size bytes of each channel's context (may be 0)
 * @retval KCOM_OK registered
 * @retval KCOM_E_INVALIDARG a NULL argument
 * @retval KCOM_E_EXISTS @p dev is registered already
 * @retval KCOM_E_OUTOFMEMORY no memory
 */
kcom_error_t kcom_iodev_register(void *dev, kcom_iochannel_create_fn create, kcom_iochannel_destroy_fn destroy,
                                 size_t ctx_size);

/**
 * @brief Unregisters a device that has no channel left.
 * @param dev the device
 * @retval KCOM_OK unregistered
 * @retval KCOM_E_INVALIDARG @p dev is NULL
 * @retval KCOM_E_NOTFOUND @p dev is not registered, or is retired (kcom_iodev_retire())
 * @retval KCOM_E_BUSY a channel to @p dev is outstanding (or being made); nothing changed
 */
kcom_error_t kcom_iodev_unregister(void *dev);

/**
 * @brief Unregisters a device now or, while channels to it remain, once they have gone
 *        (SPDK's deferred unregister).
 *
 * With no channel left (and none being made) this is kcom_iodev_unregister() followed by
 * @p gone, before it returns.  Otherwise the device is retired: gets of new or existing
 * channels give KCOM_E_NOTFOUND, the outstanding channels work and go as usual (their last put,
 * or their threads' exit), and whichever thread uncounts the last of them calls @p gone after
 * that channel's destroy callback.  So a destroy callback may drop the last reference to its
 * device and have the device retire itself: the device outlives the callback.  Until the
 * device is out of the table (just before @p gone runs), registering the same pointer again
 * gives KCOM_E_EXISTS.
 * @param dev the device
 * @param gone called once when the device is out of the table (not NULL)
 * @retval KCOM_OK unregistered (@p gone has run), or retired (@p gone runs later)
 * @retval KCOM_E_INVALIDARG @p dev or @p gone is NULL
 * @retval KCOM_E_NOTFOUND @p dev is not registered, or is retired already; nothing changed
 */
kcom_error_t kcom_iodev_retire(void *dev, kcom_iodev_gone_fn gone);

/**
 * @brief Gives the calling thread its channel to a device, making it on first use.
 * @param dev the device
 * @param out_ch receives the channel with one more reference; NULL on failure
 * @retval KCOM_OK done
 * @retval KCOM_E_INVALIDARG a NULL argument
 * @retval KCOM_E_NOTFOUND @p dev is not registered, or is retired (kcom_iodev_retire())
 * @retval KCOM_E_OUTOFMEMORY no memory for a new channel
 * @retval KCOM_E_BUSY this thread is making its channel to @p dev already: called from that
 *         channel's create callback, or from a callback nested in it
 * @retval other what the device's create callback returned; nothing is kept
 */
kcom_error_t kcom_iochannel_get(void *dev, struct kcom_iochannel **out_ch);

/**
 * @brief Drops a reference to a channel; the last one destroys it.
 * @param ch the channel, from kcom_iochannel_get() on this thread
 * @retval KCOM_OK done
 * @retval KCOM_E_INVALIDARG @p ch is NULL or not a live channel (a put after the last put,
 *         until a later get happens to make a channel at the same address: that stale put is
 *         then taken as the new channel's, so this check catches mistakes, it is no guard)
 * @retval KCOM_E_ACCESSDENIED @p ch belongs to another thread; nothing changed
 */
kcom_error_t kcom_iochannel_put(struct kcom_iochannel *ch);

/**
 * @brief The channel's context (ctx_size bytes, valid until the channel goes).
 * @param ch a live channel
 * @return the context.
 */
void *kcom_iochannel_ctx(struct kcom_iochannel *ch);

/**
 * @brief The device a channel belongs to.
 * @param ch a live channel
 * @return the device.
 */
void *kcom_iochannel_dev(struct kcom_iochannel *ch);

#ifdef __cplusplus
}
#endif
#endif /* KCOM_COM_IOCHANNEL_H */
