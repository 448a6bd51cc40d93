#!/usr/bin/perl
# socketpair-exec.pl PIDFILE SERVER-ARGV... -- CLIENT-ARGV...
#
# Connects two programs with a Unix socketpair, the way QEMU's x-pci-proxy-dev expects
# its device server: every `{fd}` in SERVER-ARGV becomes the number of the server's end,
# every `{fd}` in CLIENT-ARGV the number of the client's end. The server is forked (its
# PID is written to PIDFILE); this process then becomes the client (same PID), so the
# caller knows both PIDs and can end each one itself. Perl's Socket is in perl-base,
# which every Debian system has.
use strict;
use warnings;
use Socket;
use Fcntl;

my $pidfile = shift @ARGV or die "usage: $0 PIDFILE SERVER... -- CLIENT...\n";
my @server;
while (@ARGV) {
    my $a = shift @ARGV;
    last if $a eq '--';
    push @server, $a;
}
my @client = @ARGV;
die "usage: $0 PIDFILE SERVER... -- CLIENT...\n" unless @server && @client;

socketpair(my $srv, my $cli, AF_UNIX, SOCK_STREAM, PF_UNSPEC) or die "socketpair: $!\n";
for my $fh ($srv, $cli) {
    my $flags = fcntl($fh, F_GETFD, 0) or die "fcntl: $!\n";
    fcntl($fh, F_SETFD, $flags & ~FD_CLOEXEC) or die "fcntl: $!\n";
}
my $sfd = fileno($srv);
my $cfd = fileno($cli);

my $pid = fork();
die "fork: $!\n" unless defined $pid;
if ($pid == 0) {
    close($cli);
    exec(map { s/\{fd\}/$sfd/gr } @server) or die "exec $server[0]: $!\n";
}
close($srv);
open(my $pf, '>', $pidfile) or die "$pidfile: $!\n";
print $pf "$pid\n";
close($pf);
exec(map { s/\{fd\}/$cfd/gr } @client) or die "exec $client[0]: $!\n";
