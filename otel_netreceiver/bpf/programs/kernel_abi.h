// Generated from otel_netreceiver/kernel_abi.py by c_defines(); do not edit.
#pragma once
#define ONR_TCP_ESTABLISHED 1
#define ONR_TCP_SYN_SENT 2
#define ONR_TCP_SYN_RECV 3
#define ONR_TCP_FIN_WAIT1 4
#define ONR_TCP_FIN_WAIT2 5
#define ONR_TCP_TIME_WAIT 6
#define ONR_TCP_CLOSE 7
#define ONR_TCP_CLOSE_WAIT 8
#define ONR_TCP_LAST_ACK 9
#define ONR_TCP_LISTEN 10
#define ONR_TCP_CLOSING 11
#define ONR_TCP_NEW_SYN_RECV 12
#define ONR_TCP_BOUND_INACTIVE 13
#define ONR_NO_SOCKET_STATE 255
#define ONR_AF_INET 2
#define ONR_AF_INET6 10
#define ONR_SOFTIRQ_NET_TX 2
#define ONR_SOFTIRQ_NET_RX 3
