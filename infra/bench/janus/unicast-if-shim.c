/*
 * Janus's ICE library (libnice) pins every candidate's socket to its network interface with
 * IP_UNICAST_IF. Janus never gathers on the loopback interface, so its candidate is the
 * machine's own address on eth0 (or the like), while the load generator's peers live on
 * 127.0.0.1 only: pinned to eth0, Janus's packets to 127.0.0.1 leave by the wire and are lost.
 * Without the pin the kernel routes them as any local traffic, over the loopback device.
 *
 * Loaded with LD_PRELOAD by infra/bench/janus/start, this ignores IP_UNICAST_IF and
 * IPV6_UNICAST_IF (and nothing else). It is called only when a socket is set up, never per
 * packet.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netinet/in.h>
#include <stddef.h>
#include <sys/socket.h>

#ifndef IP_UNICAST_IF
#define IP_UNICAST_IF 50
#endif
#ifndef IPV6_UNICAST_IF
#define IPV6_UNICAST_IF 76
#endif

typedef int (*setsockopt_fn)(int, int, int, const void *, socklen_t);

int setsockopt(int fd, int level, int name, const void *value, socklen_t length) {
	static setsockopt_fn real = NULL;
	if((level == IPPROTO_IP && name == IP_UNICAST_IF) ||
			(level == IPPROTO_IPV6 && name == IPV6_UNICAST_IF))
		return 0;
	if(real == NULL)
		real = (setsockopt_fn)dlsym(RTLD_NEXT, "setsockopt");
	if(real == NULL)
		return -1;
	return real(fd, level, name, value, length);
}
