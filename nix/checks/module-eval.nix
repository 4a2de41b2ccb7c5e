# Evaluates module.nix without nixpkgs (CI machines cannot fetch it): a small stub of the lib functions
# the module uses, option values taken from each option's default or example, every part enabled.
# `nix-instantiate --eval --strict --json nix/checks/module-eval.nix` prints the options (with their
# descriptions) and the resolved systemd units; tests/e2e/test_nix.py checks them.
let
  isType = t: v: builtins.isAttrs v && (v._type or null) == t;
  mkOption = attrs: attrs // { _type = "option"; };
  types = {
    str = "str"; bool = "bool"; int = "int"; port = "port"; path = "path"; package = "package"; attrs = "attribute set";
    nullOr = t: "null or ${t}"; listOf = t: "list of ${t}"; ints = { positive = "positive int"; };
  };
  lib = {
    inherit mkOption types;
    mkEnableOption = name: mkOption { type = types.bool; default = false; description = "Whether to enable ${name}."; };
    mkIf = cond: value: { _type = "if"; inherit cond value; };
    mkMerge = contents: { _type = "merge"; inherit contents; };
    optional = c: x: if c then [ x ] else [ ];
    optionals = c: xs: if c then xs else [ ];
    optionalAttrs = c: a: if c then a else { };
    optionalString = c: s: if c then s else "";
    escapeShellArgs = args: builtins.concatStringsSep " " (map (a: "'${a}'") args);
    escapeShellArg = a: "'${a}'";
    literalExpression = text: { _type = "literalExpression"; inherit text; };
  };
  pkgs = {
    writeShellScript = name: text: "#!stub ${name}\n${text}"; # the script text, so checks can read it
    python312.withPackages = f: "/nix/store/stub-python-env";
  };

  # option values: the default, else the example; every `enable` on
  valuesOf = options: builtins.mapAttrs (name: o:
    if isType "option" o then
      (if name == "enable" then true
       else if o ? example then o.example
       else if o ? default then o.default
       else if o.type == types.package then "/nix/store/stub-evolve"
       else "stub")
    else valuesOf o) options;

  module = import ../module.nix { inherit lib pkgs config; };
  config = { services.evolve = valuesOf module.options.services.evolve; };

  mergeTwo = a: b: a // builtins.mapAttrs (k: v:
    if a ? ${k} && builtins.isAttrs v && builtins.isAttrs a.${k} then mergeTwo a.${k} v
    else if a ? ${k} && builtins.isList v && builtins.isList a.${k} then a.${k} ++ v
    else v) b;
  resolve = v:
    if isType "if" v then (if v.cond then resolve v.value else { })
    else if isType "merge" v then builtins.foldl' mergeTwo { } (map resolve v.contents)
    else v;

  flatten = prefix: set: builtins.concatLists (map (name:
    let v = set.${name}; in
    if isType "option" v then [{ name = prefix + name; description = v.description or null; type = v.type or null;
                                 default = if (v.default or null) == null then null else v.default; }]
    else flatten "${prefix}${name}." v) (builtins.attrNames set));
in
{
  options = flatten "services.evolve." module.options.services.evolve;
  config = resolve module.config;
}
