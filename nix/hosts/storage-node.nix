# The storage node: PostgreSQL (Optuna's shared storage, MLflow's backend store) and the MLflow tracking
# server with proxied artifacts, where reviewers read candidates and guardrail reports every week.
{ config, lib, pkgs, ... }:

let
  cluster = "10.0.0.0/24"; # the GPU nodes' network
in
{
  networking.hostName = "storage";
  system.stateVersion = "25.05";

  services.postgresql = {
    enable = true;
    package = pkgs.postgresql_16;
    enableTCPIP = true;
    ensureDatabases = [ "optuna" "mlflow" ];
    ensureUsers = [
      { name = "evolve"; } # Optuna studies of `evolve start` and the workers
      { name = "mlflow"; ensureDBOwnership = true; }
    ];
    authentication = ''
      # local MLflow server over the socket, GPU nodes over TCP with a password
      local mlflow mlflow peer
      host  optuna evolve ${cluster} scram-sha-256
    '';
    settings.max_connections = 200; # every worker holds a small pool
  };
  # the evolve role owns the optuna database; its password is set once by an admin:
  #   sudo -u postgres psql -c "ALTER USER evolve PASSWORD '...'"
  systemd.services.postgresql.postStart = lib.mkAfter ''
    $PSQL -tAc 'ALTER DATABASE optuna OWNER TO evolve'
  '';

  services.evolve = {
    enable = true;
    mlflow = {
      enable = true;
      host = "0.0.0.0";
      port = 5000;
    };
  };

  networking.firewall.extraCommands = ''
    iptables -A nixos-fw -p tcp -s ${cluster} --dport 5432 -j nixos-fw-accept
    iptables -A nixos-fw -p tcp -s ${cluster} --dport 5000 -j nixos-fw-accept
  '';

  services.postgresqlBackup = {
    enable = true;
    databases = [ "optuna" "mlflow" ];
    startAt = "*-*-* 03:00:00";
  };
}
