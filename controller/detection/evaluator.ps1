# FLEET-CONTROLLER-DETECTION-EVALUATOR v1
# Runs after aws:configurePackage and decides whether the package is really (un)installed.
# The rules arrive as JSON in the environment variable SSM_detectionRules and the action in
# SSM_action: the document declares both parameters with interpolationType ENV_VAR, so SSM Agent
# passes their values as data and nothing from them is ever spliced into this script's text.
# The only code ever run from the rules is the body of a 'script' rule, which the package's author
# wrote (SCCM semantics: detected when it exits 0 and writes something to stdout).
# Exit codes: 0 as expected, 1 detection disagrees with the action, 2 invalid rules, 3 agent too old.
$ErrorActionPreference = 'Stop'
Set-StrictMode -Version 2.0

function Get-Field($Object, [string]$Name) {
    if ($null -eq $Object) { return $null }
    $property = $Object.PSObject.Properties[$Name]
    if ($null -eq $property) { return $null }
    return $property.Value
}

function Test-Operator([int]$Sign, [string]$Operator) {
    switch ($Operator) {
        'eq' { return ($Sign -eq 0) }
        'ne' { return ($Sign -ne 0) }
        'gt' { return ($Sign -gt 0) }
        'ge' { return ($Sign -ge 0) }
        'lt' { return ($Sign -lt 0) }
        'le' { return ($Sign -le 0) }
    }
    throw "unknown operator '$Operator'"
}

function Get-VersionParts([string]$Text) {
    if ($null -eq $Text) { return $null }
    $trimmed = $Text.Trim()
    if ($trimmed -notmatch '^\d+(\.\d+)*$') { return $null }
    return ,([long[]]($trimmed.Split('.')))
}

function Compare-DottedVersion([string]$Left, [string]$Right) {
    $a = Get-VersionParts $Left
    $b = Get-VersionParts $Right
    if ($null -eq $a -or $null -eq $b) { return $null }
    $width = [Math]::Max($a.Length, $b.Length)
    for ($i = 0; $i -lt $width; $i++) {
        $x = 0; $y = 0
        if ($i -lt $a.Length) { $x = $a[$i] }
        if ($i -lt $b.Length) { $y = $b[$i] }
        if ($x -lt $y) { return -1 }
        if ($x -gt $y) { return 1 }
    }
    return 0
}

function Get-Sign($Left, $Right) {
    if ($Left -lt $Right) { return -1 }
    if ($Left -gt $Right) { return 1 }
    return 0
}

function New-Result([bool]$Detected, [string]$Reason) {
    return [pscustomobject]@{ Detected = $Detected; Reasons = @($Reason) }
}

function Get-Comparison($Rule) {
    $check = Get-Field $Rule 'check'
    if ($check -eq 'exists') { return 'exists' }
    return ('{0} {1} {2}' -f $check, (Get-Field $Rule 'operator'), (Get-Field $Rule 'value'))
}

function Test-VersionRule([string]$Actual, [string]$Operator, [string]$Expected, [string]$What) {
    $sign = Compare-DottedVersion $Actual $Expected
    if ($null -eq $sign) { return New-Result $false "$What (found version '$Actual', not a dotted numeric version)" }
    return New-Result (Test-Operator $sign $Operator) "$What (found version $Actual)"
}

function Test-FileRule($Rule) {
    $path = [Environment]::ExpandEnvironmentVariables([string](Get-Field $Rule 'path'))
    $what = 'file {0} {1}' -f (Get-Field $Rule 'path'), (Get-Comparison $Rule)
    if (-not (Test-Path -LiteralPath $path -PathType Leaf)) {
        if (Test-Path -LiteralPath $path) { return New-Result $false "$what (a folder, not a file)" }
        return New-Result $false "$what (file missing)"
    }
    $item = Get-Item -LiteralPath $path -Force
    $check = Get-Field $Rule 'check'
    $operator = [string](Get-Field $Rule 'operator')
    if ($check -eq 'exists') { return New-Result $true "$what (file found)" }
    if ($check -eq 'size') {
        $ok = Test-Operator (Get-Sign ([long]$item.Length) ([long](Get-Field $Rule 'value'))) $operator
        return New-Result $ok "$what (found size $($item.Length))"
    }
    $info = $item.VersionInfo
    if ($null -eq $info -or $null -eq $info.FileVersion) { return New-Result $false "$what (file has no version)" }
    $version = '{0}.{1}.{2}.{3}' -f $info.FileMajorPart, $info.FileMinorPart, $info.FileBuildPart, $info.FilePrivatePart
    return Test-VersionRule $version $operator ([string](Get-Field $Rule 'value')) $what
}

function Test-FolderRule($Rule) {
    $path = [Environment]::ExpandEnvironmentVariables([string](Get-Field $Rule 'path'))
    $what = 'folder {0} exists' -f (Get-Field $Rule 'path')
    if (Test-Path -LiteralPath $path -PathType Container) { return New-Result $true "$what (folder found)" }
    if (Test-Path -LiteralPath $path) { return New-Result $false "$what (file found, not a folder)" }
    return New-Result $false "$what (folder missing)"
}

function Open-RegistryKey([string]$Hive, [string]$Key, [bool]$Use32BitView) {
    $hives = @{
        'HKLM' = [Microsoft.Win32.RegistryHive]::LocalMachine
        'HKCU' = [Microsoft.Win32.RegistryHive]::CurrentUser
        'HKCR' = [Microsoft.Win32.RegistryHive]::ClassesRoot
        'HKU'  = [Microsoft.Win32.RegistryHive]::Users
        'HKCC' = [Microsoft.Win32.RegistryHive]::CurrentConfig
    }
    if (-not $hives.ContainsKey($Hive)) { throw "unknown hive '$Hive'" }
    $view = [Microsoft.Win32.RegistryView]::Registry64
    if ($Use32BitView) { $view = [Microsoft.Win32.RegistryView]::Registry32 }
    $base = [Microsoft.Win32.RegistryKey]::OpenBaseKey($hives[$Hive], $view)
    return $base.OpenSubKey($Key.Trim('\'))
}

function Test-RegistryRule($Rule) {
    $hive = [string](Get-Field $Rule 'hive')
    $key = [string](Get-Field $Rule 'key')
    $valueName = Get-Field $Rule 'valueName'
    $use32 = [bool](Get-Field $Rule 'use32BitView')
    $where = '{0}\{1}' -f $hive, $key
    if ($null -ne $valueName) {
        $shown = $valueName
        if ($valueName -eq '') { $shown = '(Default)' }
        $where = "$where value $shown"
    }
    $what = "registry $where $(Get-Comparison $Rule)"
    if ($use32) { $what = "$what (32-bit view)" }
    $handle = Open-RegistryKey $hive $key $use32
    if ($null -eq $handle) { return New-Result $false "$what (key missing)" }
    try {
        $check = Get-Field $Rule 'check'
        if ($check -eq 'exists' -and $null -eq $valueName) { return New-Result $true "$what (key found)" }
        $lookup = ''
        if ($null -ne $valueName) { $lookup = [string]$valueName }
        $names = @($handle.GetValueNames())
        $present = ($lookup -eq '' -and $null -ne $handle.GetValue('')) -or ($names -contains $lookup)
        if (-not $present) { return New-Result $false "$what (value missing)" }
        if ($check -eq 'exists') { return New-Result $true "$what (value found)" }
        $actual = $handle.GetValue($lookup)
        $operator = [string](Get-Field $Rule 'operator')
        $expected = Get-Field $Rule 'value'
        if ($check -eq 'string') {
            $sign = [Math]::Sign([string]::Compare([string]$actual, [string]$expected, [StringComparison]::OrdinalIgnoreCase))
            return New-Result (Test-Operator $sign $operator) "$what (found '$actual')"
        }
        if ($check -eq 'integer') {
            $number = 0L
            if (-not [long]::TryParse([string]$actual, [ref]$number)) { return New-Result $false "$what (found '$actual', not an integer)" }
            return New-Result (Test-Operator (Get-Sign $number ([long]$expected)) $operator) "$what (found $number)"
        }
        return Test-VersionRule ([string]$actual) $operator ([string]$expected) $what
    } finally {
        $handle.Close()
    }
}

function Get-ServiceStartType([string]$Name) {
    $cim = Get-CimInstance -ClassName Win32_Service -Filter ("Name='{0}'" -f $Name.Replace("'", "''")) -ErrorAction SilentlyContinue
    if ($null -eq $cim) { return 'Unknown' }
    switch ([string]$cim.StartMode) {
        'Auto' { return 'Automatic' }
        default { return [string]$cim.StartMode }
    }
}

function Test-ServiceRule($Rule) {
    $name = [string](Get-Field $Rule 'name')
    $check = Get-Field $Rule 'check'
    $what = "service $name exists"
    if ($check -ne 'exists') { $what = 'service {0} {1} {2}' -f $name, $check, (Get-Field $Rule 'value') }
    $service = Get-Service -Name $name -ErrorAction SilentlyContinue | Select-Object -First 1
    if ($null -eq $service) { return New-Result $false "$what (service missing)" }
    if ($check -eq 'exists') { return New-Result $true "$what (service found)" }
    if ($check -eq 'state') { $actual = [string]$service.Status } else { $actual = Get-ServiceStartType $service.Name }
    $ok = [string]::Equals($actual, [string](Get-Field $Rule 'value'), [StringComparison]::OrdinalIgnoreCase)
    return New-Result $ok "$what (found $check $actual)"
}

function Test-MsiRule($Rule) {
    $code = ([string](Get-Field $Rule 'productCode')).ToUpperInvariant()
    $operator = Get-Field $Rule 'operator'
    $expected = Get-Field $Rule 'version'
    $what = "msi $code installed"
    if ($null -ne $operator) { $what = "msi $code version $operator $expected" }
    $installed = $null
    foreach ($use32 in @($false, $true)) {
        $handle = Open-RegistryKey 'HKLM' "SOFTWARE\Microsoft\Windows\CurrentVersion\Uninstall\$code" $use32
        if ($null -ne $handle) {
            $installed = [string]$handle.GetValue('DisplayVersion', '')
            $handle.Close()
            break
        }
    }
    if ($null -eq $installed) { return New-Result $false "$what (product not installed)" }
    if ($null -eq $operator) { return New-Result $true "$what (installed, version $installed)" }
    return Test-VersionRule $installed ([string]$operator) ([string]$expected) $what
}

function Test-ScriptRule($Rule) {
    $body = [string](Get-Field $Rule 'script')
    $sha = [System.Security.Cryptography.SHA256]::Create()
    $digest = -join ($sha.ComputeHash([System.Text.Encoding]::UTF8.GetBytes($body)) | ForEach-Object { $_.ToString('x2') })
    $what = 'script sha256:{0} exits 0 with output' -f $digest.Substring(0, 12)
    $file = Join-Path ([System.IO.Path]::GetTempPath()) ("fleet-detect-{0}.ps1" -f [guid]::NewGuid())
    $ErrorActionPreference = 'Continue'  # a native command's stderr must not end the evaluator
    try {
        [System.IO.File]::WriteAllText($file, $body, (New-Object System.Text.UTF8Encoding($true)))
        $output = & powershell.exe -NoProfile -NonInteractive -ExecutionPolicy Bypass -File $file 2>$null
        $code = $LASTEXITCODE
    } finally {
        Remove-Item -LiteralPath $file -Force -ErrorAction SilentlyContinue
    }
    if ($code -ne 0) { return New-Result $false "$what (script exited $code)" }
    if ([string]::IsNullOrWhiteSpace(($output | Out-String))) { return New-Result $false "$what (script exited 0 without output)" }
    return New-Result $true "$what (script exited 0 with output)"
}

function Test-Rule($Rule) {
    $allOf = Get-Field $Rule 'allOf'
    if ($null -ne $allOf) {
        $results = @($allOf | ForEach-Object { Test-Rule $_ })
        $failed = @($results | Where-Object { -not $_.Detected })
        if ($failed.Count -eq 0) { return [pscustomobject]@{ Detected = $true; Reasons = @($results | ForEach-Object { $_.Reasons }) } }
        return [pscustomobject]@{ Detected = $false; Reasons = @($failed | ForEach-Object { $_.Reasons }) }
    }
    $anyOf = Get-Field $Rule 'anyOf'
    if ($null -ne $anyOf) {
        $results = @($anyOf | ForEach-Object { Test-Rule $_ })
        $held = @($results | Where-Object { $_.Detected })
        if ($held.Count -gt 0) { return $held[0] }
        return [pscustomobject]@{ Detected = $false; Reasons = @($results | ForEach-Object { $_.Reasons }) }
    }
    switch ([string](Get-Field $Rule 'type')) {
        'file' { return Test-FileRule $Rule }
        'folder' { return Test-FolderRule $Rule }
        'registry' { return Test-RegistryRule $Rule }
        'service' { return Test-ServiceRule $Rule }
        'msi' { return Test-MsiRule $Rule }
        'script' { return Test-ScriptRule $Rule }
    }
    throw ("unknown rule type '{0}'" -f (Get-Field $Rule 'type'))
}

$rulesJson = [Environment]::GetEnvironmentVariable('SSM_detectionRules')
$action = [Environment]::GetEnvironmentVariable('SSM_action')
if ($null -eq $rulesJson -or $null -eq $action) {
    Write-Output 'the detection rules were not passed as environment variables: SSM Agent 3.3.2746.0 or later is required (interpolationType ENV_VAR)'
    exit 3
}
try {
    $rules = $rulesJson | ConvertFrom-Json
    $finding = Test-Rule $rules
} catch {
    Write-Output "the detection rules are invalid: $($_.Exception.Message)"
    exit 2
}
$reasons = ($finding.Reasons -join '; ')
if ($action -eq 'Uninstall') {
    if ($finding.Detected) {
        Write-Output "detection after Uninstall: the package is still detected: $reasons"
        exit 1
    }
    Write-Output "Not detected, as expected after Uninstall: $reasons"
    exit 0
}
if (-not $finding.Detected) {
    Write-Output "detection after Install: the package is not detected: $reasons"
    exit 1
}
Write-Output "Detected: $reasons"
exit 0
