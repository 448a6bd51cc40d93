#!/usr/bin/perl
# socketpair-exec.pl PIDFILE SERVER-ARGV... -- CLIENT-ARGV...
#
# Connects two programs with a Unix socketpair, the way QEMU's x-pci-proxy-dev expects
# its device server: every `{fd}` in SERVER-ARGV becomes the number of the server's end,
# every `{fd}` in CLIENT-ARGV the number of the client's end. Both are started as children
# of this process, which writes "SERVER-PID CLIENT-PID" to PIDFILE (so the caller can end
# each by its PID), reaps them as they exit (so an exited one never lingers as a zombie
# that still answers `kill -0`) and exits once both are gone. Perl's Socket module is in
# perl-base, which every Debian system has.
use strict;
use warnings;
use Socket;
use Fcntl;
use POSIX ();

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

sub start {
    my ($keep, $drop, $fd, @argv) = @_;
    my $pid = fork();
    die "fork: $!\n" unless defined $pid;
    if ($pid == 0) {
        close($drop);
        exec(map { s/\{fd\}/$fd/gr } @argv) or POSIX::_exit(127);
    }
    return $pid;
}

my $server_pid = start($srv, $cli, $sfd, @server);
my $client_pid = start($cli, $srv, $cfd, @client);
close($srv);
close($cli);
open(my $pf, '>', "$pidfile.tmp") or die "$pidfile: $!\n";
print $pf "$server_pid $client_pid\n";
close($pf);
rename("$pidfile.tmp", $pidfile) or die "$pidfile: $!\n";
my $left = 2;
while ($left > 0) {
    my $pid = waitpid(-1, 0);
    last if $pid < 0;
    $left-- if $pid == $server_pid || $pid == $client_pid;
}
