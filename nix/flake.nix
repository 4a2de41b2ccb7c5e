{
  description = "evolve: a self-tuning retrieval stack that never gets worse without a human saying yes";

  inputs = {
    # the nodes' system channel
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.05";
    # GPU nodes: the narrower Python 3.12 environment for vLLM, PyTorch and CUDA user space
    nixpkgs-unstable.url = "github:NixOS/nixpkgs/nixpkgs-unstable";
  };

  outputs = { self, nixpkgs, nixpkgs-unstable }:
    let
      system = "x86_64-linux";
      pkgs = import nixpkgs { inherit system; };
      pkgsCuda = import nixpkgs-unstable {
        inherit system;
        config = { allowUnfree = true; cudaSupport = true; };
      };
    in
    {
      packages.${system} = {
        default = self.packages.${system}.evolve;
        # CPU build (laptops, the storage node, CI-like machines)
        evolve = pkgs.callPackage ./package.nix { };
        # GPU nodes: CUDA torch and faiss from the unstable channel, beside vLLM
        evolve-cuda = pkgsCuda.callPackage ./package.nix { cudaSupport = true; };
        # vLLM's OpenAI-compatible server from the same unstable Python 3.12 environment
        vllm = pkgsCuda.python312.withPackages (ps: [ ps.vllm ]);
      };

      apps.${system}.default = {
        type = "app";
        program = "${self.packages.${system}.evolve}/bin/evolve";
      };

      devShells.${system}.default = pkgs.mkShell {
        # the package's Python environment plus test and operations tools
        inputsFrom = [ self.packages.${system}.evolve ];
        packages = [
          pkgs.python312Packages.pytest
          pkgs.postgresql_15 # shared-study tests start their own server
          pkgs.chromium # MLflow UI test (headless)
          pkgs.wrk # bench/serving/load.sh
          pkgs.duckdb
        ];
        shellHook = ''
          export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 MLFLOW_DISABLE_TELEMETRY=true DO_NOT_TRACK=true
        '';
      };

      nixosModules = {
        default = self.nixosModules.evolve;
        evolve = { pkgs, lib, ... }: {
          imports = [ ./module.nix ];
          services.evolve.package = lib.mkDefault self.packages.${system}.evolve;
        };
      };

      # example hosts (adapt hostnames, disks, addresses): `nixos-rebuild switch --flake ./nix#gpu-node-1`
      nixosConfigurations = {
        storage-node = nixpkgs.lib.nixosSystem {
          inherit system;
          modules = [ self.nixosModules.evolve ./hosts/storage-node.nix ];
        };
        gpu-node-1 = nixpkgs.lib.nixosSystem {
          inherit system;
          specialArgs = { inherit self; gpuIndex = 1; };
          modules = [ self.nixosModules.evolve ./hosts/gpu-node.nix ];
        };
        gpu-node-2 = nixpkgs.lib.nixosSystem {
          inherit system;
          specialArgs = { inherit self; gpuIndex = 2; };
          modules = [ self.nixosModules.evolve ./hosts/gpu-node.nix ];
        };
        gpu-node-3 = nixpkgs.lib.nixosSystem {
          inherit system;
          specialArgs = { inherit self; gpuIndex = 3; };
          modules = [ self.nixosModules.evolve ./hosts/gpu-node.nix ];
        };
      };
    };
}
