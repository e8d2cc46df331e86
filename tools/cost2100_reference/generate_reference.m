% generate_reference.m -- our own driver around the public COST 2100 MATLAB reference.
%
% This file is part of mimokd and contains no code of the COST 2100 reference
% implementation (GPL-3.0).  It only *calls* the reference's top-level function
% `cost2100(...)` from a checkout that the user fetches separately and passes on
% the command line (see README.md in this folder).
%
% Usage (GNU Octave >= 7, run from any directory):
%
%   octave-cli --no-gui -q generate_reference.m REFDIR SCENARIO NDROPS SEED OUT.mat
%
%   REFDIR    path to the reference's `matlab/` folder (cost2100/cost2100 on GitHub)
%   SCENARIO  IndoorHall_5GHz | SemiUrban_300MHz_LOS | SemiUrban_300MHz_NLOS
%   NDROPS    number of independent drops (one new environment + one UE position each)
%   SEED      integer; UE positions and the generator states of every drop derive from it
%   OUT.mat   output file (MAT v7, readable by scipy.io.loadmat)
%
% Each drop: a new call of cost2100(...) with one BS at the origin, one UE drawn
% uniformly in a square of side L centred on the BS (CsiNet recipe: L = 20 m indoor,
% 400 m outdoor), both at height 0 m (as in the reference's own demo), zero velocity,
% one snapshot.  The output is the MPC-level (plane-wave) description of the link:
% no antenna pattern is applied here; the 32-element ULA is applied in Python
% (mimokd.channels.cost2100_stats.frequency_response).
%
% Output variables (flat MPC table + per-drop vectors; P = total MPC rows, D = drops):
%   mpc_drop     (P,1)  drop index 1..D of the row
%   mpc_delay    (P,1)  absolute propagation delay [s] (incl. twin-cluster link delay)
%   mpc_aod      (P,1)  BS-side azimuth [rad], atan2(y, x) of the BS->scatterer vector
%   mpc_eod      (P,1)  BS-side elevation [rad]
%   mpc_aoa      (P,1)  UE-side azimuth [rad]
%   mpc_eoa      (P,1)  UE-side elevation [rad]
%   mpc_amp_re/_im (P,1) complex amplitude (path loss, VR gain, cluster attenuation,
%                        shadowing and the unit-energy Rayleigh MPC weights included)
%   mpc_cluster  (P,1)  far cluster index (1-based, into the drop's cluster list),
%                       -1 LOS, -2 BS local cluster, -3 UE (MS) local cluster
%   mpc_kind     (P,1)  0 LOS, 1 far single-bounce cluster, 2 far twin cluster,
%                       3 BS local cluster, 4 MS local cluster, -9 unknown (label mismatch)
%   The LOS row is always present (amplitude 0 when the LOS is not visible).
%   n_active     (D,1)  number of active (visible) far clusters
%   n_far_total  (D,1)  number of far clusters in the drop's environment
%   n_c_far      (D,1)  paraSt.n_c_far (the drawn/fixed 'number of far clusters' parameter)
%   n_twin_active (D,1) active far clusters of the twin type
%   los_power_factor (D,1) paraSt.power_factor (drawn LOS power factor, linear)
%   pathloss     (D,1)  amplitude path-loss factor of the link
%   bs_pos, ms_pos (D,3) positions [m]
%   n_retries    (D,1)  reference runs rejected because no far cluster was active
%   seconds      (D,1)  wall-clock seconds of the cost2100(...) calls of the drop
%   label_mismatch (D,1) 1 where the MPC labels could not be reconstructed
%   plus scalars/strings: scenario, network, los_nlos, freq_band, square_side, seed,
%   octave_version.

args = argv();
if numel(args) < 5
  error('usage: generate_reference.m REFDIR SCENARIO NDROPS SEED OUT.mat');
end
refdir = args{1};
scenario = args{2};
ndrops = str2double(args{3});
seed = str2double(args{4});
outfile = args{5};

addpath(refdir);
% The reference calls pow2db (Octave Forge `signal` package).  If it is not
% installed, use our one-line stand-in from ./octave_shims.
if ~exist('pow2db')
  here = fileparts(mfilename('fullpath'));
  if isempty(here)
    here = pwd;
  end
  addpath(fullfile(here, 'octave_shims'));
end

switch scenario
  case 'IndoorHall_5GHz'
    network = 'IndoorHall_5GHz'; los_nlos = 'LOS';   % the reference only offers 'LOS' here
    freq_band = [-10e6 10e6] + 5.3e9;               % band of the reference's own demo
    square_side = 20;
  case 'SemiUrban_300MHz_LOS'
    network = 'SemiUrban_300MHz'; los_nlos = 'LOS';
    freq_band = [-10e6 10e6] + 300e6;               % CsiNet's 300 MHz (demo uses 275-295 MHz)
    square_side = 400;
  case 'SemiUrban_300MHz_NLOS'
    network = 'SemiUrban_300MHz'; los_nlos = 'NLOS';
    freq_band = [-10e6 10e6] + 300e6;
    square_side = 400;
  otherwise
    error('unknown scenario %s', scenario);
end

% UE positions of all drops, drawn before any reference call: the reference
% re-seeds `rand` from the wall clock inside get_VRtable (when VR groups are
% used, e.g. IndoorHall_5GHz), so positions drawn later would not be reproducible.
rand('state', seed);
ms_xy = (rand(ndrops, 2) - 0.5) * square_side;

bs_center = [0 0 0];
P = 0;
cap = ndrops * 1200;
mpc_drop = zeros(cap, 1); mpc_delay = zeros(cap, 1); mpc_aod = zeros(cap, 1);
mpc_eod = zeros(cap, 1); mpc_aoa = zeros(cap, 1); mpc_eoa = zeros(cap, 1);
mpc_amp_re = zeros(cap, 1); mpc_amp_im = zeros(cap, 1);
mpc_cluster = zeros(cap, 1); mpc_kind = zeros(cap, 1);
n_active = zeros(ndrops, 1); n_far_total = zeros(ndrops, 1); n_c_far = zeros(ndrops, 1);
n_twin_active = zeros(ndrops, 1); los_power_factor = zeros(ndrops, 1);
pathloss = zeros(ndrops, 1); bs_pos = zeros(ndrops, 3); ms_pos = zeros(ndrops, 3);
n_retries = zeros(ndrops, 1); seconds = zeros(ndrops, 1); label_mismatch = zeros(ndrops, 1);

t_all = tic;
for d = 1:ndrops
  ms = [ms_xy(d, :) 0];
  % Per-drop generator states (reproducible except for the reference's own
  % clock-based re-seeding of `rand`, see README).
  rand('state', seed * 100003 + d);
  randn('state', seed * 100003 + d);
  t0 = tic;
  ok = false;
  while ~ok
    try
      [paraEx, paraSt, link, env] = cost2100(network, los_nlos, freq_band, 1, 1, ...
          bs_center, [0 0 0], 1, ms, [0 0 0]);
      ok = true;
    catch err
      if isempty(strfind(err.message, 'No active cluster'))
        rethrow(err);
      end
      n_retries(d) = n_retries(d) + 1;   % the reference asks to 'restart simulation'
    end
  end
  seconds(d) = toc(t0);

  ch = link(1, 1).channel{1, 1};
  h = ch.h;                    % [phiBS thetaBS phiMS thetaMS tau amp vv vh hh hv]
  act = ch.active_c(:);
  nmpc = paraSt.n_mpc;
  types = [env.cluster.type];
  % Labels of the unfiltered rows, in the order get_channel stacks them:
  % far clusters (n_mpc rows per active cluster), BS local, MS local.
  lab_c = [kron(act, ones(nmpc, 1))];
  lab_k = [kron(types(act)', ones(nmpc, 1))];
  if paraSt.BSLocal
    lab_c = [lab_c; -2 * ones(nmpc, 1)]; lab_k = [lab_k; 3 * ones(nmpc, 1)];
  end
  if paraSt.MSLocal
    lab_c = [lab_c; -3 * ones(nmpc, 1)]; lab_k = [lab_k; 4 * ones(nmpc, 1)];
  end
  if numel(lab_c) ~= size(h, 1)
    % get_channel dropped zero-amplitude rows: labels cannot be matched.
    label_mismatch(d) = 1;
    lab_c = zeros(size(h, 1), 1); lab_k = -9 * ones(size(h, 1), 1);
  end
  hl = ch.h_los;
  rows = [h(:, 1:6); hl(1:6)];
  lab_c = [lab_c; -1];
  lab_k = [lab_k; 0];
  n = size(rows, 1);
  if P + n > cap
    grow = max(cap, n);
    mpc_drop(end + grow) = 0; mpc_delay(end + grow) = 0; mpc_aod(end + grow) = 0;
    mpc_eod(end + grow) = 0; mpc_aoa(end + grow) = 0; mpc_eoa(end + grow) = 0;
    mpc_amp_re(end + grow) = 0; mpc_amp_im(end + grow) = 0;
    mpc_cluster(end + grow) = 0; mpc_kind(end + grow) = 0;
    cap = cap + grow;
  end
  idx = P + (1:n);
  mpc_drop(idx) = d;
  mpc_aod(idx) = rows(:, 1); mpc_eod(idx) = rows(:, 2);
  mpc_aoa(idx) = rows(:, 3); mpc_eoa(idx) = rows(:, 4);
  mpc_delay(idx) = rows(:, 5);
  mpc_amp_re(idx) = real(rows(:, 6)); mpc_amp_im(idx) = imag(rows(:, 6));
  mpc_cluster(idx) = lab_c; mpc_kind(idx) = lab_k;
  P = P + n;

  n_active(d) = numel(act);
  n_far_total(d) = numel(env.cluster);
  n_c_far(d) = paraSt.n_c_far;
  n_twin_active(d) = sum(types(act) == 2);
  los_power_factor(d) = paraSt.power_factor;
  pathloss(d) = ch.pathloss;
  bs_pos(d, :) = bs_center;
  ms_pos(d, :) = ms;
  if mod(d, 10) == 0 || d == ndrops
    printf('%s: drop %d/%d, %.2f s/drop so far\n', scenario, d, ndrops, toc(t_all) / d);
    fflush(stdout);
  end
end

mpc_drop = mpc_drop(1:P); mpc_delay = mpc_delay(1:P); mpc_aod = mpc_aod(1:P);
mpc_eod = mpc_eod(1:P); mpc_aoa = mpc_aoa(1:P); mpc_eoa = mpc_eoa(1:P);
mpc_amp_re = mpc_amp_re(1:P); mpc_amp_im = mpc_amp_im(1:P);
mpc_cluster = mpc_cluster(1:P); mpc_kind = mpc_kind(1:P);
octave_version = OCTAVE_VERSION;
save('-v7', outfile, 'mpc_drop', 'mpc_delay', 'mpc_aod', 'mpc_eod', 'mpc_aoa', 'mpc_eoa', ...
     'mpc_amp_re', 'mpc_amp_im', 'mpc_cluster', 'mpc_kind', 'n_active', 'n_far_total', ...
     'n_c_far', 'n_twin_active', 'los_power_factor', 'pathloss', 'bs_pos', 'ms_pos', ...
     'n_retries', 'seconds', 'label_mismatch', 'scenario', 'network', 'los_nlos', ...
     'freq_band', 'square_side', 'seed', 'octave_version');
printf('wrote %s (%d drops, %d MPC rows, %.2f s per drop)\n', outfile, ndrops, P, mean(seconds));
