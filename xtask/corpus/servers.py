#!/usr/bin/env python3
"""Small servers and clients for the detection corpus (cargo xtask corpus).

Runs inside network namespaces the corpus script made; every address it
serves on or connects to is one of those namespaces' own. Bounded: each
client stops after its count or its deadline.

    servers.py dns ADDR            UDP/53: answers every query (NXDOMAIN)
    servers.py ntp ADDR            UDP/123: answers every NTP request
    servers.py telnet ADDR         TCP/23: a login prompt that refuses all
    servers.py irc ADDR            TCP/6667: accepts, reads, closes
    servers.py benign DNS NTP WEB MQTT SECONDS
                                   an IoT device's ordinary traffic
    servers.py beacon ADDR PORT PERIOD COUNT
                                   connect, say hello, close, every PERIOD s
"""
import socket
import socketserver
import ssl
import subprocess
import sys
import threading
import time


def dns(addr):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((addr, 53))
    while True:
        q, peer = s.recvfrom(512)
        if len(q) < 12:
            continue
        # Same id, QR=1, RCODE=3 (NXDOMAIN), the question echoed.
        s.sendto(q[:2] + b"\x81\x83" + q[4:6] + b"\x00\x00\x00\x00\x00\x00" + q[12:], peer)


def ntp(addr):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((addr, 123))
    while True:
        q, peer = s.recvfrom(512)
        if len(q) >= 48:
            s.sendto(b"\x24\x02\x00\xe7" + b"\x00" * 44, peer)


class Telnet(socketserver.BaseRequestHandler):
    def handle(self):
        self.request.settimeout(5)
        try:
            for _ in range(3):
                self.request.sendall(b"\r\nlogin: ")
                if not self.request.recv(256):
                    return
                self.request.sendall(b"Password: ")
                if not self.request.recv(256):
                    return
                time.sleep(0.2)
                self.request.sendall(b"\r\nLogin incorrect\r\n")
        except OSError:
            pass


class Irc(socketserver.BaseRequestHandler):
    def handle(self):
        self.request.settimeout(2)
        try:
            self.request.recv(512)
            self.request.sendall(b":c2 001 bot :welcome\r\n")
        except OSError:
            pass


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


def benign(dns_addr, ntp_addr, web, mqtt, seconds):
    """DNS lookups, NTP, HTTPS API calls, MQTT publishes and an HTTP
    download, at the pace of a chatty device."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    end = time.time() + float(seconds)
    i = 0
    while time.time() < end:
        i += 1
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.settimeout(1)
        name = b"\x05cloud\x07example\x03com\x00" if i % 2 else b"\x04time\x07example\x03com\x00"
        u.sendto(bytes([i % 256, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]) + name + b"\x00\x01\x00\x01", (dns_addr, 53))
        try:
            u.recvfrom(512)
        except OSError:
            pass
        u.close()
        if i % 5 == 1:
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            u.settimeout(1)
            u.sendto(b"\x1b" + b"\x00" * 47, (ntp_addr, 123))
            try:
                u.recvfrom(512)
            except OSError:
                pass
            u.close()
        try:
            with socket.create_connection((web, 443), timeout=2) as t:
                with ctx.wrap_socket(t) as tls:
                    tls.sendall(b"GET /api/state HTTP/1.0\r\nHost: cloud\r\n\r\n")
                    while tls.recv(65536):
                        pass
        except OSError:
            pass
        if i % 2 == 0:
            subprocess.run(["mosquitto_pub", "-h", mqtt, "-t", "sensors/1", "-m", '{"t":21.5}'],
                           timeout=5, check=False)
        if i % 7 == 3:
            try:
                with socket.create_connection((web, 80), timeout=2) as t:
                    t.sendall(b"GET /firmware.bin HTTP/1.0\r\nHost: updates\r\n\r\n")
                    while t.recv(65536):
                        pass
            except OSError:
                pass
        time.sleep(0.7)


def beacon(addr, port, period, count):
    for _ in range(int(count)):
        try:
            with socket.create_connection((addr, int(port)), timeout=1) as t:
                t.sendall(b"NICK bot\r\n")
                t.recv(512)
        except OSError:
            pass
        time.sleep(float(period))


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "dns":
        dns(*args)
    elif cmd == "ntp":
        ntp(*args)
    elif cmd == "telnet":
        Server((args[0], 23), Telnet).serve_forever()
    elif cmd == "irc":
        Server((args[0], 6667), Irc).serve_forever()
    elif cmd == "benign":
        benign(*args)
    elif cmd == "beacon":
        beacon(*args)
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    threading.excepthook = lambda a: None
    main()
